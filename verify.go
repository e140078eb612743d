package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// archive verify, the scrub: every archive this host uploaded, checked on the server against
// the sha256 recorded at upload, one log line each. A weekly cron line runs it; it logs, mails
// and writes last-verify.json like a night, and its verdict feeds retention (damaged).

const (
	lastVerifyFile = "last-verify.json"
	// damagedFile lists the archives the last scrub found missing or altered: retention counts
	// them as missing for keep_min, and never deletes them (they are evidence).
	damagedFile = "damaged"
)

// verifyOptions are verify's own flags; the conf's [verify] gives their defaults.
type verifyOptions struct {
	download bool // download every archive, even where the server can hash
	sample   int  // check only this many archives, the newest and the oldest among them
}

// scrubbed is one archive's verdict.
type scrubbed struct {
	name, result string // OK, DIFFERS, MISSING, UNRECORDED, or FAILED (the server did not tell)
}

func verifyArchives(o *options) int {
	conf, confErr := loadConf(o.conf)
	if confErr == nil { // a --from typo is the operator's, told on the terminal: no log, no mail
		if _, f := (&job{conf: conf}).pick(o.restore.from); f != nil {
			return usageError(f.cause, f.hint)
		}
	}
	j := startJob(conf, o)
	defer j.log.close()
	j.scrub = true
	if f := j.ready(confErr); f != nil {
		return j.finish(f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if f := j.lock(); f != nil { // never beside a night: its prune could delete what is checked
		return j.finish(f)
	}
	defer j.unlock()
	opt := verifyOptions{download: o.download || conf.VerifyDownload, sample: conf.VerifySample}
	if o.sample >= 0 {
		opt.sample = o.sample
	}
	ds, _ := j.pick(o.restore.from) // --from was checked before the job started
	var failures []*failure
	checked := 0
	for _, d := range ds {
		j.at(d)
		n, f := j.scrubDest(ctx, d, opt, o.restoreTest, o.restore.identity)
		checked += n
		j.res.Archive = fmt.Sprintf("verify of %d archives", checked)
		if f != nil {
			if len(ds) > 1 && !f.logged {
				j.logFailure(f)
				f.logged = true
			}
			failures = append(failures, f)
		}
		if ctx.Err() != nil {
			break
		}
	}
	j.current = ""
	if len(failures) == 0 {
		return j.finish(nil)
	}
	// A damaged or missing archive is what the scrub is for: its code wins.
	worst := failures[0]
	for _, f := range failures {
		if f.exit == exitVerify && worst.exit != exitVerify {
			worst = f
		}
	}
	return j.finish(worst)
}

// scrubDest is the scrub of one destination: its listing, each archive's line, the verdict, and
// the restore drill when asked.
func (j *job) scrubDest(ctx context.Context, d dest, opt verifyOptions, restoreTest bool, identity string) (int, *failure) {
	files, f := j.list(ctx, d, "verify", exitConnection)
	if f != nil {
		return 0, f
	}
	recs, facts := readRecords(d.StateDir), readFacts(d.StateDir)
	names := scrubList(files, j.conf, recs, opt.sample)
	var verdicts []scrubbed
	for _, name := range names {
		verdicts = append(verdicts, j.scrubOne(ctx, d, files, name, recs[name], facts[name].size, opt.download))
		if ctx.Err() != nil {
			break
		}
	}
	f = j.scrubVerdict(d, verdicts, len(names))
	if restoreTest && f == nil {
		f = j.restoreDrill(ctx, d, verdicts, identity)
	}
	return len(verdicts), f
}

// restoreDrill restores the newest sound archive into a private folder of the run, proves the
// dump's sha256 against the record, and removes it all: a restore drill that touches no real
// target. An encrypted archive needs --identity.
func (j *job) restoreDrill(ctx context.Context, d dest, verdicts []scrubbed, identity string) *failure {
	name := ""
	for _, v := range verdicts {
		if v.result == "OK" {
			name = v.name
			break
		}
	}
	dump := readFacts(d.StateDir)[name].dump
	switch {
	case name == "":
		return &failure{check: "restore-test", exit: exitVerify, cause: "no sound archive to restore", hint: "read the verify lines above"}
	case strings.HasSuffix(name, encryptedExt) && identity == "":
		j.skipped("restore-test", kv("name", name), kv("reason", "the archive is encrypted: --identity FILE restores it (the identity is not kept on this host)"))
		return nil
	case dump == "":
		j.skipped("restore-test", kv("name", name), kv("reason", "no dump sha256 recorded for it (archived before 2026-12): restore it by hand"))
		return nil
	}
	tgz := filepath.Join(j.work, name)
	if _, f := j.do(ctx, d.long("restore-test", "get", name, tgz), exitVerify); f != nil {
		return f
	}
	to := filepath.Join(j.work, "drill")
	os.Mkdir(to, 0o700)
	env := []string{"ARCHIVE_EXPECTED_FILE=" + j.conf.ExpectedFile, "ARCHIVE_DUMP_SHA256=" + dump}
	if strings.HasSuffix(name, encryptedExt) {
		abs, _ := filepath.Abs(identity)
		env = append(env, "ARCHIVE_IDENTITY_FILE="+abs)
	}
	res, f := j.do(ctx, step{check: "restore-test", script: "extract.sh", args: []string{tgz, readRecords(d.StateDir)[name], to}, env: env,
		timeout: j.conf.PackTimeout, causes: extractCauses, timeoutKey: "[archive] timeout"}, exitVerify)
	os.RemoveAll(to)
	os.Remove(tgz)
	if f != nil {
		return f
	}
	j.ok("restore-test", kv("name", name), kv("dump_size", res.facts["size"]), kv("dump_sha256", short(res.facts["sha256"])), kv("note", "restored into a private folder, proven, removed"))
	return nil
}

// scrubList is what verify checks, newest first: every name of this format on the server, and
// every archive recorded here (a missing one included). With a sample, the newest and the oldest
// always, and others at random.
func scrubList(files []remoteFile, c *Conf, recs map[string]string, sample int) []string {
	dates := map[string]time.Time{}
	for _, f := range files {
		if d, ok := parseArchiveName(c.NameFormat, f.Name); ok {
			dates[f.Name] = d
		}
	}
	for name := range recs {
		if d, ok := parseArchiveName(c.NameFormat, name); ok {
			dates[name] = d
		}
	}
	names := make([]string, 0, len(dates))
	for n := range dates {
		names = append(names, n)
	}
	sort.Slice(names, func(i, k int) bool {
		if !dates[names[i]].Equal(dates[names[k]]) {
			return dates[names[i]].After(dates[names[k]])
		}
		return names[i] > names[k]
	})
	if sample <= 0 || sample >= len(names) {
		return names
	}
	picked := []string{names[0], names[len(names)-1]}
	middle := slices.Clone(names[1 : len(names)-1])
	rand.Shuffle(len(middle), func(i, k int) { middle[i], middle[k] = middle[k], middle[i] })
	picked = append(picked, middle[:max(0, sample-2)]...)
	sort.Slice(picked, func(i, k int) bool { return slices.Index(names, picked[i]) < slices.Index(names, picked[k]) })
	return picked[:min(sample, len(picked))]
}

// scrubOne checks one archive against its recorded sha256 and size (0: unknown), and logs its line.
func (j *job) scrubOne(ctx context.Context, d dest, files []remoteFile, name, sum string, known int64, download bool) scrubbed {
	var listed *remoteFile
	for i := range files {
		if files[i].Name == name {
			listed = &files[i]
		}
	}
	switch {
	case sum == "":
		j.warning("verify", "the archive has no record on this host: its content cannot be proven", kv("name", name), kv("result", "UNRECORDED"),
			kv("hint", "an archive of another host or of before its records; restore --use-server-checksum reads its .sha256"))
		return scrubbed{name, "UNRECORDED"}
	case listed == nil:
		j.failed("verify", kv("name", name), kv("result", "MISSING"), kv("cause", "the archive this host uploaded is no longer on the server"),
			kv("key", d.key("path")), kv("hint", "someone or something removed it; the other archives are checked on"))
		return scrubbed{name, "MISSING"}
	}
	size := listed.Size
	if known > 0 {
		size = known
	}
	res, f := j.scrubStep(ctx, d, name, sum, size, download)
	if f == nil && !download && res.facts["verified"] != "sha256" {
		// A size proves nothing of the bytes, nor does a checksum the server kept since the upload
		// (S3): the server did not hash them now, so the archive is read back.
		res, f = j.scrubStep(ctx, d, name, sum, size, true)
	}
	switch {
	case f == nil:
		j.ok("verify", kv("name", name), kv("size", size), kv("sha256", short(sum)), kv("verified", res.facts["verified"]), kv("duration", res.facts["duration"]))
		return scrubbed{name, "OK"}
	case res.code == 27:
		j.failed("verify", kv("name", name), kv("result", "DIFFERS"), kv("cause", "the archive on the server is not the one uploaded (size or sha256 differs from the record)"),
			kv("detail", f.detail), kv("key", d.key("path")), kv("hint", "do not trust this copy; the next night's archive is a new one, and an older one may be restored"))
		return scrubbed{name, "DIFFERS"}
	case res.code == 29:
		j.failed("verify", kv("name", name), kv("result", "MISSING"), kv("cause", "the archive this host uploaded is no longer on the server"), kv("key", d.key("path")))
		return scrubbed{name, "MISSING"}
	}
	j.failed("verify", kv("name", name), kv("result", "FAILED"), kv("cause", f.cause), kv("detail", f.detail), kv("key", f.key), kv("hint", f.hint))
	return scrubbed{name, "FAILED"}
}

func (j *job) scrubStep(ctx context.Context, d dest, name, sum string, size int64, download bool) (stepResult, *failure) {
	s := d.long("verify", "verify", name, sum, strconv.FormatInt(size, 10))
	if download {
		s.env = append(s.env, "ARCHIVE_DEST_VERIFY=download")
	}
	return j.do(ctx, s, exitVerify)
}

// scrubVerdict sums the lines up, writes the damaged list for retention, and gives the outcome:
// a damaged or missing archive is a failure (exit 17), one without a record a warning.
func (j *job) scrubVerdict(d dest, verdicts []scrubbed, planned int) *failure {
	count := map[string]int{}
	var bad []string
	for _, v := range verdicts {
		count[v.result]++
		if v.result == "DIFFERS" || v.result == "MISSING" {
			bad = append(bad, v.name)
		}
	}
	j.info("verify", kv("checked", len(verdicts)), kv("ok", count["OK"]), kv("differs", count["DIFFERS"]), kv("missing", count["MISSING"]),
		kv("unrecorded", count["UNRECORDED"]), kv("failed", count["FAILED"]))
	if len(verdicts) == planned { // an interrupted scrub proves nothing either way
		if err := writeDamaged(d.StateDir, bad); err != nil {
			j.warning("verify", err.Error(), kv("key", "[archive] state_dir"))
		}
	}
	switch {
	case len(bad) > 0:
		return &failure{check: "verify", exit: exitVerify, logged: true, key: d.key("path"),
			cause: fmt.Sprintf("%d archive(s) missing or altered on the server: %s", len(bad), strings.Join(bad, ", ")),
			hint:  "they no longer count for keep_min and are never pruned; look at the server's disk and at who can write there"}
	case count["FAILED"] > 0:
		return &failure{check: "verify", exit: exitFailure, logged: true, cause: fmt.Sprintf("%d archive(s) could not be checked", count["FAILED"]),
			hint: "read their FAILED lines; the next verify checks them again"}
	}
	return nil
}

func readDamaged(dir string) map[string]bool {
	out := map[string]bool{}
	data, _ := os.ReadFile(filepath.Join(dir, damagedFile))
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out[l] = true
		}
	}
	return out
}

func writeDamaged(dir string, names []string) error {
	body := "# written by archive verify: archives missing or altered on the server\n" + strings.Join(names, "\n")
	if len(names) > 0 {
		body += "\n"
	}
	return writeFileAtomic(dir, damagedFile, []byte(body))
}
