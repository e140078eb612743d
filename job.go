package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// job is one use of the conf: the nightly run, or an operator's command. It carries what the
// stages share, and the result they fill for the mail, last-run.json and `archive status`.
type job struct {
	conf   *Conf
	log    *logger
	steps  *stepRunner
	work   string // the job's own folder in work_dir
	now    time.Time
	dryRun bool
	// replace, acceptShrink: the operator's --replace and --accept-shrink (archive run).
	replace, acceptShrink bool
	scrub                 bool // archive verify: last-verify.json, no monitoring ping
	res                   *result
	current               string // the destination the lines are about, when there are several
	held                  *lockFile
	wd                    *workDir
}

// startJob opens the log and writes the run's first line.
func startJob(conf *Conf, o *options) *job {
	confPath, now, dryRun := o.conf, o.now, o.dryRun
	j := &job{conf: conf, log: openLog(conf), now: now, dryRun: dryRun, replace: o.replace, acceptShrink: o.acceptShrink}
	if conf != nil {
		confPath = conf.Path
		j.log.secrets = querySecrets(conf.URL)
	}
	j.res = &result{RunID: j.log.runID, Version: version, Conf: confPath, Date: now.Format("2006-01-02"), Started: time.Now()}
	j.log.write("START", "", []fact{kv("version", version), kv("conf", confPath), kv("date", j.res.Date), kv("dry_run", dryRunFact(dryRun))})
	return j
}

func dryRunFact(b bool) string {
	if b {
		return "yes: nothing changes on the server or in the state"
	}
	return ""
}

// ready refuses to start on a broken conf, a log that cannot be written, or root when the conf
// forbids it. Conf problems are all logged, and also go to stderr: under cron, a run that cannot
// even start must reach cron's mail.
func (j *job) ready(confErr error) *failure {
	if confErr != nil {
		if j.log.file != nil {
			fmt.Fprintf(os.Stderr, "archive: error: the conf %q has problems; nothing was done:\n", j.res.Conf)
		}
		hint := "fix the conf; archive.conf documents every key with its default"
		errs := confErrors(confErr)
		for _, e := range errs {
			j.failed("conf", kv("cause", e), kv("hint", hint))
			if j.log.file != nil {
				fmt.Fprintln(os.Stderr, "  "+e)
			}
		}
		return &failure{check: "conf", exit: exitUsage, cause: errs[0], hint: hint, logged: true}
	}
	if j.log.broken != "" {
		return &failure{check: "log", exit: exitUsage, cause: j.log.broken, key: "[log] file", hint: "create its folder and let the user running archive write there"}
	}
	for _, w := range j.conf.Warnings {
		j.log.warning("conf", kv("cause", w))
	}
	if !j.conf.AllowRoot && os.Geteuid() == 0 {
		return &failure{check: "conf", exit: exitUsage, cause: "refusing to run as root", key: "[archive] allow_root",
			hint: "run as the dedicated user (see the user guide), or set allow_root = yes"}
	}
	return nil
}

// lock takes the run's lock and makes its work folder.
func (j *job) lock() *failure {
	held, err := takeLock(j.conf.StateDir)
	if err != nil {
		f := &failure{check: "lock", exit: exitFailure, cause: err.Error(), key: "[archive] state_dir"}
		if errors.Is(err, errLocked) {
			f.exit = exitLocked
		}
		return f
	}
	j.held = held
	for _, d := range j.conf.Dests {
		if err := privateDir(d.StateDir, "the state folder of ["+d.section()+"]"); err != nil {
			return &failure{check: "lock", exit: exitFailure, cause: err.Error(), key: "[archive] state_dir"}
		}
	}
	if !j.dryRun {
		ping(j.conf, j.log, "start", held)
	}
	j.wd, err = newWorkDir(j.conf.WorkDir, j.log.runID, j.log)
	if err != nil {
		return &failure{check: "archive", exit: exitArchive, cause: err.Error(), key: "[archive] work_dir",
			hint: "create work_dir and make it writable by the user running archive"}
	}
	j.work = j.wd.dir
	j.steps = newStepRunner(j.work, held)
	return nil
}

func (j *job) unlock() {
	if j.held != nil {
		j.held.release()
	}
}

// finish logs the failure, if any, and what it prevented; cleans up; mails the report, writes
// last-run.json and pings the monitor; and ends the log with the RESULT line.
func (j *job) finish(f *failure) int {
	if j.log.lost != "" && f == nil {
		f = &failure{check: "log", exit: exitFailure, cause: j.log.lost, key: "[log] file",
			hint: "free space on the log's disk (or fix it): this run's lines are missing from the log, so its outcome is a failure"}
	}
	code := exitOK
	switch {
	case f != nil:
		j.fail(f)
		code = f.exit
	case j.res.Warning != nil:
		code = exitWarning
	}
	if j.wd != nil {
		j.wd.remove(j.log) // before the last lines: a cleanup problem is part of the run's story
	}
	if j.conf != nil && !j.dryRun {
		code = mailReport(j.conf, j.log, j.res, code)
		if j.held != nil {
			j.res.save(j.conf, j.log, code, map[bool]string{false: lastRunFile, true: lastVerifyFile}[j.scrub])
		}
		// A run that found the lock held leaves the ping to the run that holds it.
		if !j.scrub && (f == nil || (f.check != "conf" && code != exitLocked)) {
			ping(j.conf, j.log, map[bool]string{true: "success", false: "fail"}[code == exitOK || code == exitWarning], j.held)
		}
	}
	return j.log.result(code, j.res.Started)
}

// The job's log lines: each names its check; all but INFO are kept in the result too.
func (j *job) line(status, check string, facts []fact) {
	if j.current != "" && slices.Contains(destChecks, check) {
		facts = append([]fact{kv("destination", j.current)}, facts...)
	}
	j.log.write(status, check, facts)
	if status != "INFO" && j.res != nil {
		masked := make([]fact, len(facts))
		for i, f := range facts {
			masked[i] = fact{f.k, j.log.mask(f.v)}
		}
		j.res.add(status, check, masked)
	}
}

func (j *job) ok(check string, facts ...fact)      { j.line("OK", check, facts) }
func (j *job) failed(check string, facts ...fact)  { j.line("FAILED", check, facts) }
func (j *job) skipped(check string, facts ...fact) { j.line("SKIPPED", check, facts) }
func (j *job) info(check string, facts ...fact)    { j.line("INFO", check, facts) }

// warning is a problem that makes the outcome a WARNING (exit 3), the first one its subject.
func (j *job) warning(check, cause string, facts ...fact) {
	j.line("WARNING", check, append([]fact{kv("cause", cause)}, facts...))
	if j.res.Warning == nil {
		j.res.Warning = &problem{Check: check, Cause: shown(j.log.mask(cause))}
	}
}

// do runs a step and, when it fails, explains why.
func (j *job) do(ctx context.Context, s step, exit int) (stepResult, *failure) {
	t := time.Now()
	res := j.steps.exec(ctx, s)
	res.facts["duration"] = time.Since(t).Round(time.Millisecond).String()
	if res.code == 0 && res.err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, &failure{check: s.check, exit: exitFailure, cause: "the run was interrupted by a signal (SIGTERM, SIGINT or SIGHUP)",
			hint: "the next run starts over: nothing was recorded as archived", rerun: j.steps.rerun(s)}
	}
	return res, j.steps.explain(s, res, exit)
}

// fail is the run's failure: the mail's and last-run.json's, logged with the checks it prevented.
func (j *job) fail(f *failure) {
	m := func(s string) string { return shown(j.log.mask(s)) } // the mail's body and subject
	j.res.Failure = &problem{Check: f.check, Cause: m(f.cause), Detail: m(f.detail), Key: f.key, Hint: m(f.hint), Rerun: m(f.rerun)}
	if !f.logged {
		j.logFailure(f)
	}
}

// logFailure logs a failed check and the checks it prevented.
func (j *job) logFailure(f *failure) {
	j.failed(f.check, kv("cause", f.cause), kv("detail", f.detail), kv("key", f.key), kv("hint", f.hint), kv("rerun", f.rerun))
	seen := false
	for _, id := range checkIDs {
		if seen {
			j.skipped(id, kv("reason", "an earlier check failed"))
		}
		seen = seen || id == f.check
	}
}

var checkIDs = []string{"url", "download", "zip-content", "changed", "archive", "connection", "transfer"}

// destChecks are the lines about one destination: with several, each names its destination.
var destChecks = []string{"connection", "transfer", "record", "prune", "verify", "restore-test", "list"}

// sourceStep is a call of fetch.sh: the environment and the time it may take, from [source]:
// every attempt with its own timeout, and the delays between them.
func sourceStep(c *Conf, check string, retries int, args ...string) step {
	env := []string{"ARCHIVE_URL=" + c.URL, "ARCHIVE_TIMEOUT=" + secs(c.Timeout),
		"ARCHIVE_RETRIES=" + strconv.Itoa(retries), "ARCHIVE_RETRY_DELAY=" + secs(c.RetryDelay)}
	if c.SourceCA != "" {
		env = append(env, "ARCHIVE_CA_FILE="+c.SourceCA)
	}
	wait := time.Duration(retries+1)*(c.Timeout+5*time.Second) + c.RetryDelay*(1<<min(retries, 10))
	return step{check: check, script: "fetch.sh", args: args, env: env, timeout: wait, causes: fetchCauses, timeoutKey: "[source] timeout"}
}

// 1. url: the source answers, a transient error retried like the download's.
func (j *job) probeSource(ctx context.Context) *failure {
	res, f := j.do(ctx, sourceStep(j.conf, "url", j.conf.Retries, "probe"), exitURL)
	if f != nil {
		return f
	}
	facts := []fact{kv("status", res.facts["status"]), kv("size", res.facts["size"]), kv("last_modified", res.facts["last_modified"]),
		kv("retried_after", res.facts["retried"]), kv("url", j.conf.URL)}
	if final := res.facts["final_url"]; res.facts["redirects"] != "0" && final != "" && final != j.conf.URL {
		facts = append(facts, kv("final_url", final))
		if from, to := hostOf(j.conf.URL), hostOf(final); from != to {
			facts = append(facts, kv("note", "redirected to another host: "+to))
		}
	}
	j.ok("url", facts...)
	return nil
}

// zipFile is the downloaded zip and what the zip-content check learnt of the dump in it.
type zipFile struct {
	path         string // in the work folder; nothing was downloaded after a 304
	notModified  bool   // HTTP 304: the zip is the one archived last
	etag         string // strong only
	size         int64
	get          step // the download, rerun first when an operator reruns the next step
	unpack       step
	reuse        bool   // the archive is made of the zip member's own deflate data
	whyNotReused string // when compressor = auto could not reuse it
	sql          string // the dump on disk when the archive does not reuse the zip's data
	dumpSHA256   string
	dumpSize     int64
}

// 2. download: the zip arrived whole, or the server answered that it has not changed since the
// last archived one (HTTP 304).
func (j *job) download(ctx context.Context, prev state, conditional bool) (zipFile, *failure) {
	c := j.conf
	z := zipFile{path: filepath.Join(j.work, "source.zip")}
	z.get = sourceStep(c, "download", c.Retries, "get", z.path)
	// Only a strong ETag proves the same bytes: never a file time, which a new dump may carry
	// older than the last one's (a restored export, a clock set right).
	if conditional && c.Conditional && c.OnUnchanged != "archive" && prev.SHA256 != "" && prev.ETag != "" {
		z.get.env = append(z.get.env, "ARCHIVE_IF_NONE_MATCH="+prev.ETag)
	}
	res, f := j.do(ctx, z.get, exitDownload)
	if f != nil {
		return z, f
	}
	if res.facts["status"] == "304" {
		z.notModified, z.etag = true, prev.ETag
		j.ok("download", kv("status", "304"), kv("note", "not modified since the last archive: nothing downloaded"), kv("duration", res.facts["duration"]))
		return z, nil
	}
	z.etag = strongETag(res.facts["etag"])
	z.size = atoi64(res.facts["size"])
	j.res.ZipSize = z.size
	j.ok("download", kv("size", res.facts["size"]), kv("attempts", res.facts["attempts"]), kv("retried_after", res.facts["retried"]),
		kv("duration", res.facts["duration"]))
	return z, nil
}

// mayReuse: the conf lets the archive be made of the zip's own deflate data (auto, and reuse,
// its older name).
func (c *Conf) mayReuse() bool { return c.Compressor == "auto" || c.Compressor == "reuse" }

// 3. zip-content: a valid zip holding the expected file, checked and hashed in one pass. When the
// conf lets the archive reuse the zip's own deflate data, the step writes the dump only if the
// member cannot be reused, and says which (reuse=yes or no): pack follows what it says.
func (j *job) unpack(ctx context.Context, z *zipFile, prev state) *failure {
	c := j.conf
	if z.notModified {
		z.dumpSHA256, z.dumpSize = prev.SHA256, atoi64(prev.Size)
		j.skipped("zip-content", kv("reason", "the zip is the one archived on "+prev.Date+" (HTTP 304)"))
		return nil
	}
	out := filepath.Join(j.work, c.ExpectedFile)
	env := []string{archiveBin(), "ARCHIVE_EXPECTED_FILE=" + c.ExpectedFile, "ARCHIVE_MAX_SIZE=" + fmt.Sprint(c.MaxSize), "ARCHIVE_MIN_SIZE=" + fmt.Sprint(c.MinSize)}
	if c.mayReuse() {
		env = append(env, "ARCHIVE_REUSE=yes")
	}
	z.unpack = step{check: "zip-content", script: "unpack.sh", args: []string{z.path, out}, timeout: c.PackTimeout, causes: unpackCauses,
		timeoutKey: "[archive] timeout", before: &z.get, env: env}
	res, f := j.do(ctx, z.unpack, exitZipContent)
	if f != nil {
		return f
	}
	if res.facts["reuse"] == "yes" && c.mayReuse() {
		z.reuse = true
	} else {
		z.sql, z.whyNotReused = out, res.facts["why"]
		os.Remove(z.path) // the work folder never holds more than it needs
	}
	z.dumpSHA256, z.dumpSize = res.facts["sha256"], atoi64(res.facts["size"])
	j.res.DumpSHA256, j.res.DumpSize = z.dumpSHA256, z.dumpSize
	j.ok("zip-content", kv("file", c.ExpectedFile), kv("size", res.facts["size"]), kv("sha256", z.dumpSHA256))
	return nil
}

func stateFailure(err error) *failure {
	return &failure{check: "changed", exit: exitChanged, cause: err.Error(), key: "[archive] state_dir",
		hint: "fix or remove the state file; removing it makes the next run archive the dump as new"}
}

// decision is what check "changed" makes of a dump.
type decision struct {
	action    int    // archiveDump, skipDump or failDump
	unchanged bool   // the dump is the one archived last
	since     string // the day the dump last changed, as the state will record it
	days      int    // days it has been unchanged
	cause     string // for failDump
	key, hint string
	shrank    string // how much it shrank from the last archived dump, past max_shrink
	catchUp   string // an unchanged dump delivered only to these destinations, which lack it
}

const (
	archiveDump = iota
	skipDump
	failDump
)

// decide is the dump policy: max_shrink for a dump that shrank (an error text in place of the
// export), on_unchanged, and max_unchanged_days for a source that looks stuck. A 304 answer comes
// here as the last archived dump's sha256 and size. acceptShrink is the operator's
// --accept-shrink.
func decide(c *Conf, prev state, sum string, size int64, now time.Time, acceptShrink bool) decision {
	if prev.SHA256 != sum {
		d := decision{action: archiveDump, since: now.Format("2006-01-02")}
		if last := atoi64(prev.Size); last > 0 && size < last-last*int64(c.MaxShrink)/100 {
			d.shrank = fmt.Sprintf("%d%% (%d bytes now, %d bytes in %s, the last archived)", (last-size)*100/last, size, last, prev.Name)
			if !acceptShrink {
				d.action, d.key = failDump, "[source] max_shrink"
				d.cause = "the dump shrank " + d.shrank + ": it looks like an error text or a truncated export"
				d.hint = "check the export on the source server; if the shrink is expected, run once with archive run --accept-shrink"
			}
		}
		return d
	}
	d := decision{unchanged: true, since: prev.Changed}
	if since, err := time.Parse("2006-01-02", prev.Changed); err == nil {
		d.days = int(day(now).Sub(since).Hours() / 24)
	}
	switch {
	case c.OnUnchanged == "fail":
		d.action, d.cause, d.key = failDump, "the dump is the same as the one archived on "+prev.Date, "[archive] on_unchanged"
		d.hint = "the export on the source server may have stopped; check it"
	case c.MaxUnchangedDays > 0 && d.days >= c.MaxUnchangedDays:
		d.action, d.key = failDump, "[archive] max_unchanged_days"
		d.cause = fmt.Sprintf("the dump has not changed for %d days (since %s): the source looks stuck", d.days, prev.Changed)
		d.hint = "check the export job on the database server; raise max_unchanged_days if the data rarely changes"
	case c.OnUnchanged == "skip":
		d.action = skipDump
	default:
		d.action = archiveDump
	}
	return d
}

// 4. changed: logs the decision. A skipped dump remembers a new zip's validators, so that
// tomorrow's answer can be 304.
func (j *job) changed(d decision, z zipFile, prev state) *failure {
	if d.action == failDump && !d.unchanged {
		return &failure{check: "changed", exit: exitChanged, cause: d.cause, key: d.key, hint: d.hint}
	}
	if !d.unchanged {
		previous := short(prev.SHA256)
		if previous == "" {
			previous = "none (first run)"
		}
		note := ""
		if d.shrank != "" {
			note = "shrank " + d.shrank + "; archived, as asked by --accept-shrink"
		}
		j.ok("changed", kv("sha256", short(z.dumpSHA256)), kv("previous", previous), kv("last_archived", prev.Name), kv("note", note))
		return nil
	}
	same := []fact{kv("sha256", short(z.dumpSHA256)), kv("last_archived", prev.Name), kv("on", prev.Date)}
	switch d.action {
	case failDump:
		return &failure{check: "changed", exit: exitChanged, cause: d.cause, key: d.key, hint: d.hint}
	case skipDump:
		if !j.dryRun && z.etag != prev.ETag {
			p := prev
			p.ETag = z.etag
			if err := writeState(j.conf.StateDir, p); err != nil {
				j.warning("changed", err.Error(), kv("key", "[archive] state_dir"))
			}
		}
		j.warning("changed", "the dump is the same as the last one archived; nothing to do", same...)
		for _, id := range []string{"archive", "connection", "transfer"} {
			j.skipped(id, kv("reason", "unchanged dump (on_unchanged = skip)"))
		}
		return nil
	}
	action := "archived anyway (on_unchanged = archive)"
	if d.catchUp != "" {
		action = "delivered only to " + d.catchUp + ", which lack(s) it (its last delivery failed, or it is new)"
	}
	j.ok("changed", append([]fact{kv("unchanged", "yes"), kv("action", action)}, same...)...)
	return nil
}

// archiveFile is the .tgz made by check "archive".
type archiveFile struct {
	path, name, sha256 string
	size               int64
}

// 5. archive: NAME.tgz made and proven to be a valid gzip tar: of the zip's own deflate data
// when the zip-content step said it can be reused, else compressed again (pigz when installed).
func (j *job) pack(ctx context.Context, z zipFile) (archiveFile, *failure) {
	c := j.conf
	name := archiveName(c.NameFormat, j.now)
	a := archiveFile{path: filepath.Join(j.work, name), name: name}
	compressor := c.Compressor
	var env []string
	switch {
	case z.reuse:
		compressor = "reuse"
		env = []string{archiveBin(), "ARCHIVE_ZIP=" + z.path, "ARCHIVE_MEMBER=" + c.ExpectedFile}
		if c.EncryptTo != "" { // streamed through age: the plain archive never reaches the disk
			env = append(env, "ARCHIVE_RECIPIENTS="+c.EncryptTo)
			a.path, a.name = a.path+encryptedExt, a.name+encryptedExt
		}
	case c.mayReuse():
		compressor = "gzip"
		if _, err := exec.LookPath("pigz"); err == nil {
			compressor = "pigz"
		}
		fallthrough
	default:
		env = []string{"ARCHIVE_COMPRESSION_LEVEL=" + strconv.Itoa(c.CompressionLevel), "ARCHIVE_SHA256=" + z.dumpSHA256}
	}
	sql := z.sql
	if sql == "" {
		sql = filepath.Join(j.work, c.ExpectedFile) // never written: pack-member reads the zip
	}
	s := step{check: "archive", script: "pack.sh", args: []string{sql, a.path}, timeout: c.PackTimeout, causes: packCauses,
		timeoutKey: "[archive] timeout", before: &z.unpack, env: append([]string{"ARCHIVE_COMPRESSOR=" + compressor}, env...)}
	res, f := j.do(ctx, s, exitArchive)
	if f != nil {
		return a, f
	}
	os.Remove(sql)
	os.Remove(z.path)
	a.sha256, a.size = res.facts["sha256"], atoi64(res.facts["size"])
	encrypted := res.facts["encrypted"]
	if c.EncryptTo != "" && encrypted == "" {
		enc, f := j.encrypt(ctx, a, &s)
		if f != nil {
			return a, f
		}
		a, encrypted = enc, "age"
	}
	j.res.Archive, j.res.ArchiveSHA256, j.res.ArchiveSize = a.name, a.sha256, a.size
	note := ""
	if z.whyNotReused != "" && c.mayReuse() {
		note = "the zip's data could not be reused (" + z.whyNotReused + "): compressed again"
	}
	j.ok("archive", kv("name", a.name), kv("size", a.size), kv("sha256", a.sha256), kv("compressor", res.facts["compressor"]), kv("encrypted", encrypted), kv("note", note))
	return a, nil
}

// encrypt makes NAME.tgz.age of the archive with age, to the public keys of encrypt_to, and
// removes the plain one: what is uploaded, recorded and verified is the encrypted file.
func (j *job) encrypt(ctx context.Context, a archiveFile, packed *step) (archiveFile, *failure) {
	enc := archiveFile{name: a.name + encryptedExt, path: a.path + encryptedExt}
	s := step{check: "archive", script: "encrypt.sh", args: []string{a.path, enc.path}, env: []string{"ARCHIVE_RECIPIENTS=" + j.conf.EncryptTo},
		timeout: j.conf.PackTimeout, causes: encryptCauses, timeoutKey: "[archive] timeout", before: packed}
	res, f := j.do(ctx, s, exitArchive)
	os.Remove(a.path)
	if f != nil {
		return a, f
	}
	enc.sha256, enc.size = res.facts["sha256"], atoi64(res.facts["size"])
	return enc, nil
}

// 6. connection: the server answers and the login works.
func (j *job) connect(ctx context.Context, d dest) *failure {
	if _, f := j.do(ctx, d.quick("connection", "check"), exitConnection); f != nil {
		return f
	}
	j.ok("connection", kv("server", d.where()))
	return nil
}

// targets are the destinations this run delivers to: all of them; and, with several, those that
// lack the last archived dump (lagging), which get it even when it is unchanged.
func (j *job) targets(prev state) (all, lagging []dest) {
	all = j.dests()
	if len(all) < 2 || prev.SHA256 == "" {
		return all, nil
	}
	for _, d := range all {
		if !d.has(prev) {
			lagging = append(lagging, d)
		}
	}
	return all, lagging
}

func labels(ds []dest) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.label()
	}
	return strings.Join(names, ", ")
}

// deliver puts the archive on each destination in turn, each with the whole contract (connect,
// transfer through a verified temporary name, record, prune); one that fails never stops the
// next. The state moves on with the first verified copy. SUCCESS when every copy is verified; with
// several destinations, a WARNING when at least one is (delivered now, or by an earlier night),
// else the first destination's failure.
func (j *job) deliver(ctx context.Context, zip zipFile, tgz archiveFile, d decision, targets []dest) *failure {
	var failures []*failure
	delivered := 0
	outcome := func(d dest, what, note string) { // the mail's and status's line per destination
		if len(j.conf.Dests) > 1 {
			j.res.delivery(d, what, note)
		}
	}
	for _, dst := range targets {
		j.at(dst)
		f := j.connect(ctx, dst) // 6. connection
		if f == nil && j.dryRun {
			j.preview(ctx, dst, tgz)
			outcome(dst, "DRY RUN", "")
			continue
		}
		if f == nil {
			f = j.transfer(ctx, dst, tgz) // 7. transfer
		}
		if f != nil {
			failures = append(failures, f)
			if len(j.conf.Dests) > 1 {
				j.logFailure(f)
				f.logged = true
			}
			outcome(dst, "FAILED", "at "+f.check+": "+f.cause)
			continue
		}
		// Only now does the state move on: a failed upload is retried by the next run.
		if delivered == 0 {
			if f := j.saveState(zip, tgz, d); f != nil {
				j.current = ""
				return f
			}
		}
		delivered++
		j.recordChecksum(ctx, dst, tgz)
		j.prune(ctx, dst, tgz.name)
		outcome(dst, "DELIVERED", "")
	}
	j.current = ""
	for _, dst := range j.dests() {
		if !slices.ContainsFunc(targets, func(t dest) bool { return t.Name == dst.Name }) {
			outcome(dst, "UP TO DATE", "it has this dump already")
		}
	}
	// A destination that had this dump already holds a verified copy too.
	copies := delivered + len(j.conf.Dests) - len(targets)
	switch {
	case len(failures) == 0:
		return nil
	case len(j.conf.Dests) == 1:
		return failures[0]
	case copies == 0:
		f := *failures[0]
		f.cause = fmt.Sprintf("no destination got the archive (%d failed); the first: %s", len(failures), f.cause)
		return &f
	}
	f := failures[0]
	// Worth more than any earlier warning: a copy is missing.
	j.res.Warning = &problem{Check: f.check, Cause: shown(j.log.mask(fmt.Sprintf("%d of %d destinations failed; the first: %s", len(failures), len(j.conf.Dests), f.cause)))}
	return nil
}

// saveState moves the state on, after a verified transfer.
func (j *job) saveState(z zipFile, a archiveFile, d decision) *failure {
	err := writeState(j.conf.StateDir, state{SHA256: z.dumpSHA256, Date: j.now.Format("2006-01-02"), Name: a.name, ArchiveSHA256: a.sha256,
		Size: strconv.FormatInt(z.dumpSize, 10), Changed: d.since, ETag: z.etag})
	if err != nil {
		return &failure{check: "state", exit: exitFailure, cause: err.Error(), key: "[archive] state_dir",
			hint: "the archive is on the server, but the next run will archive the same dump again; fix state_dir"}
	}
	return nil
}

// hostOf is a URL's host and port, "" when it does not parse.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

func secs(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// strongETag keeps an ETag fit to prove, sent back as If-None-Match, that the zip is the same
// bytes: strong (a weak W/ one means only "equivalent") and one printable line.
func strongETag(v string) string {
	if strings.HasPrefix(v, "W/") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return v
}
