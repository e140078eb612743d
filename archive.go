// Command archive fetches a database dump published as a zip over HTTPS, checks it, packs it as
// a dated .tgz, pushes it to an archive server, prunes old archives and logs every check.
//
// Go reads the conf, decides and logs; the step scripts in steps/ do the work with curl, unzip,
// tar, rsync/ssh and the rest. See docs/technical-memo.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var version = "dev"

// Exit codes; the README and the technical memo carry the same table.
const (
	exitOK         = 0
	exitFailure    = 1 // a failure outside the seven checks (state, lock file, signal...)
	exitUsage      = 2 // bad command line or conf
	exitWarning    = 3 // unchanged dump skipped, or archived but prune had a problem
	exitLocked     = 4 // another run holds the lock
	exitURL        = 10
	exitDownload   = 11
	exitZipContent = 12
	exitChanged    = 13
	exitArchive    = 14
	exitConnection = 15
	exitTransfer   = 16
)

const usage = `usage: archive [-c FILE] [--date YYYY-MM-DD] [run [--dry-run]]
       archive [-c FILE] check [--mail]
       archive [-c FILE] list
       archive [-c FILE] restore (NAME | --latest) [--to DIR]
       archive [-c FILE] status
       archive --version

run      fetch the dump zip over HTTPS, check it, pack it as a dated .tgz, upload it to the
         archive server, prune old archives, log every check (the default command);
         --dry-run does the downloads and local checks and says what it would upload and
         delete, changing nothing on the server or in the state
check    touch everything a run touches (conf, tools, work_dir, source, server, retention),
         one OK/FAILED line each; --mail also sends a test mail
list     the archives on the server, with what the next prune would delete and why
restore  download an archive, verify its sha256, extract the dump into DIR (default .)
status   the last run, for humans (state_dir/last-run.json)

  -c FILE        the conf (default /etc/archive/archive.conf, else ./archive.conf)
  --date DAY     as of that day: archive name and retention ages (default today)
  --version      print the version

Cron, every night at 02:30 (output goes to the log; cron mails only if archive cannot start):
  30 2 * * *  archive  /usr/local/bin/archive -c /etc/archive/archive.conf >/dev/null

Exit codes: 0 success, 1 failure outside the checks, 2 usage or conf error, 3 warning,
4 another run is active, 10-16 failure at check url, download, zip-content, changed, archive,
connection, transfer.
`

func main() {
	// A closed stdout (archive | head) must not kill a run halfway: writes then fail with EPIPE
	// instead. Notify, not Ignore, so that the steps still get the default SIGPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	os.Exit(cli(os.Args[1:]))
}

func cli(args []string) int {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	confPath := fs.String("c", "", "conf file")
	date := fs.String("date", "", "run as of this day (YYYY-MM-DD)")
	showVersion := fs.Bool("version", false, "print the version")
	dryRun := fs.Bool("dry-run", false, "run: change nothing on the server or in the state")
	withMail := fs.Bool("mail", false, "check: also send a test mail")
	latest := fs.Bool("latest", false, "restore: the newest archive")
	to := fs.String("to", ".", "restore: the folder to extract the dump into")
	// Flags may stand anywhere: before the command, after it, around its argument.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitUsageOrHelp(err)
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *showVersion {
		fmt.Println("archive", version)
		return exitOK
	}
	cmd := "run"
	if len(words) > 0 {
		cmd, words = words[0], words[1:]
	}
	if len(words) > 0 && !(cmd == "restore" && len(words) == 1) {
		fmt.Fprintf(os.Stderr, "archive: unexpected argument %q\n%s", words[0], usage)
		return exitUsage
	}
	now := time.Now()
	if *date != "" {
		d, err := time.ParseInLocation("2006-01-02", *date, time.Local)
		if err != nil {
			fmt.Fprintf(os.Stderr, "archive: --date wants YYYY-MM-DD, got %q\n", *date)
			return exitUsage
		}
		now = time.Date(d.Year(), d.Month(), d.Day(), now.Hour(), now.Minute(), now.Second(), 0, time.Local)
	}
	path := findConf(*confPath)
	switch cmd {
	case "run":
		return nightly(path, now, *dryRun)
	case "check":
		return check(path, now, *withMail)
	case "list":
		return list(path, now)
	case "status":
		return status(path, now)
	case "restore":
		name := ""
		if len(words) == 1 {
			name = words[0]
		}
		if (name == "") == !*latest {
			fmt.Fprintf(os.Stderr, "archive: restore wants an archive NAME or --latest\n%s", usage)
			return exitUsage
		}
		return restore(path, now, name, *to)
	default:
		fmt.Fprintf(os.Stderr, "archive: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
}

func exitUsageOrHelp(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// nightly is the whole run, in the order it happens at 2 a.m. It returns the exit code.
func nightly(confPath string, now time.Time, dryRun bool) int {
	start := time.Now()
	conf, confErr := loadConf(confPath)
	log := openLog(conf)
	defer log.close()
	if conf != nil {
		confPath = conf.Path
	}
	log.write("START", "", []fact{kv("version", version), kv("conf", confPath), kv("date", now.Format("2006-01-02")), kv("dry_run", dryRunFact(dryRun))})
	// Whatever happens, the last lines are the mail's (when asked for) and the RESULT; a run
	// that held the lock leaves last-run.json for `archive status` and monitoring.
	locked := false
	finish := func(code int) int {
		if conf != nil && !dryRun {
			code = report(conf, log, code, start)
			if locked {
				writeLastRun(conf, log, code, now, start)
			}
			// A run that found the lock held leaves the ping to the run that holds it.
			if confErr == nil && code != exitLocked {
				ping(conf, log, map[bool]string{true: "success", false: "fail"}[code == exitOK || code == exitWarning])
			}
		}
		return log.result(code, start)
	}
	if confErr != nil {
		// Also on stderr: under cron, a run that cannot even start must reach cron's mail.
		if log.file != nil {
			fmt.Fprintf(os.Stderr, "archive: the conf %q has problems; nothing was done:\n", confPath)
		}
		for _, e := range flatten(confErr) {
			log.failed("conf", kv("cause", e), kv("hint", "fix the conf; archive.conf documents every key with its default"))
			if log.file != nil {
				fmt.Fprintln(os.Stderr, "  "+e)
			}
		}
		return finish(exitUsage)
	}
	if log.broken != "" {
		log.failed("log", kv("cause", log.broken), kv("key", "[log] file"), kv("hint", "create its folder and let the user running archive write there"))
		return finish(exitUsage)
	}
	for _, w := range conf.Warnings {
		log.warning("conf", kv("cause", w))
	}
	if !conf.AllowRoot && os.Geteuid() == 0 {
		log.failed("conf", kv("cause", "refusing to run as root"), kv("key", "[archive] allow_root"),
			kv("hint", "run as the dedicated user (see the user guide), or set allow_root = yes"))
		return finish(exitUsage)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()

	lock, err := takeLock(conf.StateDir)
	if err != nil {
		log.failed("lock", kv("cause", err.Error()), kv("key", "[archive] state_dir"))
		if errors.Is(err, errLocked) {
			return finish(exitLocked)
		}
		return finish(exitFailure)
	}
	defer lock.release()
	locked = true
	if !dryRun {
		ping(conf, log, "start")
	}

	work, err := newWorkDir(conf.WorkDir, log.runID, log)
	if err != nil {
		log.failed("archive", kv("cause", err.Error()), kv("key", "[archive] work_dir"), kv("hint", "create work_dir and make it writable by the user running archive"))
		return finish(exitArchive)
	}
	r := &run{conf: conf, log: log, steps: &runner{stepsDir: stepsDir(), tmpDir: work.dir}, work: work.dir, now: now, dryRun: dryRun}
	code := r.checks(ctx)
	work.remove(log) // before the last lines: a cleanup problem is part of the run's story
	return finish(code)
}

func dryRunFact(b bool) string {
	if b {
		return "yes: nothing changes on the server or in the state"
	}
	return ""
}

// run carries what the checks share.
type run struct {
	conf   *Conf
	log    *logger
	steps  *runner
	work   string
	now    time.Time
	dryRun bool
}

// checks runs the seven checks in order, then state and prune, and returns the exit code.
func (r *run) checks(ctx context.Context) int {
	c := r.conf
	src := []string{"ARCHIVE_URL=" + c.URL, "ARCHIVE_TIMEOUT=" + secs(c.Timeout),
		"ARCHIVE_RETRIES=" + fmt.Sprint(c.Retries), "ARCHIVE_RETRY_DELAY=" + secs(c.RetryDelay)}
	if c.SourceCA != "" {
		src = append(src, "ARCHIVE_CA_FILE="+c.SourceCA)
	}

	// 1. url: the source answers, a transient error retried like the download's. Each attempt
	// may ask twice (HEAD, then one byte from a server that refuses HEAD).
	maxWait := time.Duration(c.Retries+1)*(c.Timeout+5*time.Second) + c.RetryDelay*(1<<min(c.Retries, 10))
	probe := step{check: "url", script: "fetch.sh", args: []string{"probe"}, env: src,
		timeout: 2 * maxWait, causes: fetchCauses, timeoutKey: "[source] timeout"}
	res, fail := r.do(ctx, probe, exitURL)
	if fail != nil {
		return r.fail(fail)
	}
	r.log.ok("url", kv("status", res.facts["status"]), kv("size", res.facts["size"]), kv("last_modified", res.facts["last_modified"]),
		kv("retried_after", res.facts["retried"]), kv("url", c.URL))

	// 2. download: the zip arrived whole, or the server answered that it has not changed since
	// the last archived one (HTTP 304), which then stands for its dump.
	zip := filepath.Join(r.work, "source.zip")
	// Read once, here: its validators make the download conditional; a state file that cannot
	// be read fails check "changed" below, after the download.
	prev, stateErr := readState(c.StateDir)
	getEnv := src
	if c.Conditional && c.OnUnchanged != "archive" && prev.SHA256 != "" {
		if prev.ETag != "" {
			getEnv = append(getEnv, "ARCHIVE_IF_NONE_MATCH="+prev.ETag)
		}
		if prev.LastModified != "" {
			getEnv = append(getEnv, "ARCHIVE_IF_MODIFIED_SINCE="+prev.LastModified)
		}
	}
	get := step{check: "download", script: "fetch.sh", args: []string{"get", zip}, env: getEnv, timeout: maxWait, causes: fetchCauses, timeoutKey: "[source] timeout"}
	res, fail = r.do(ctx, get, exitDownload)
	if fail != nil {
		return r.fail(fail)
	}
	etag, lastModified := headerValue(res.facts["etag"]), settled(headerValue(res.facts["last_modified"]), res.facts["date"])
	sql := filepath.Join(r.work, c.ExpectedFile)
	// auto reuses the zip's own deflate data when it can: nothing is compressed again, and the
	// dump never needs to be written (pack.sh compresses instead when the member is not deflated).
	reuse := c.Compressor == "reuse" || c.Compressor == "auto"
	var sum string
	var unpack step
	if res.facts["status"] == "304" {
		etag, lastModified, sum = prev.ETag, prev.LastModified, prev.SHA256
		r.log.ok("download", kv("status", "304"), kv("note", "not modified since the last archive: nothing downloaded"), kv("duration", res.facts["duration"]))
		r.log.skipped("zip-content", kv("reason", "the zip is the one archived on "+prev.Date+" (HTTP 304)"))
	} else {
		facts := []fact{kv("size", res.facts["size"]), kv("attempts", res.facts["attempts"])}
		if res.facts["retried"] != "" {
			facts = append(facts, kv("retried_after", res.facts["retried"]))
		}
		r.log.ok("download", append(facts, kv("duration", res.facts["duration"]))...)

		// 3. zip-content: a valid zip holding the expected file, extracted and hashed in one
		// pass. With reuse the dump is only hashed, never written: pack takes the zip's data.
		out := sql
		if reuse {
			out = "-"
		}
		unpack = step{check: "zip-content", script: "unpack.sh", args: []string{zip, out}, timeout: c.PackTimeout, causes: unpackCauses, timeoutKey: "[archive] timeout", before: &get,
			env: []string{"ARCHIVE_EXPECTED_FILE=" + c.ExpectedFile, "ARCHIVE_MAX_SIZE=" + fmt.Sprint(c.MaxSize), "ARCHIVE_MIN_SIZE=" + fmt.Sprint(c.MinSize)}}
		res, fail = r.do(ctx, unpack, exitZipContent)
		if fail != nil {
			return r.fail(fail)
		}
		if !reuse {
			os.Remove(zip) // the work folder never holds more than it needs
		}
		sum = res.facts["sha256"]
		r.log.ok("zip-content", kv("file", c.ExpectedFile), kv("size", res.facts["size"]), kv("sha256", sum))
	}

	// 4. changed: the dump differs from the last one archived.
	if stateErr != nil {
		return r.fail(&failure{check: "changed", exit: exitChanged, cause: stateErr.Error(), key: "[archive] state_dir",
			hint: "fix or remove the state file; removing it makes the next run archive the dump as new"})
	}
	name := archiveName(c.NameFormat, r.now)
	changed := r.now.Format("2006-01-02")
	if prev.SHA256 == sum {
		changed = prev.Changed
		same := []fact{kv("sha256", short(sum)), kv("last_archived", prev.Name), kv("on", prev.Date)}
		since, _ := time.Parse("2006-01-02", prev.Changed)
		if days := int(day(r.now).Sub(since).Hours() / 24); c.MaxUnchangedDays > 0 && days >= c.MaxUnchangedDays && c.OnUnchanged != "fail" {
			return r.fail(&failure{check: "changed", exit: exitChanged,
				cause: fmt.Sprintf("the dump has not changed for %d days (since %s): the source looks stuck", days, prev.Changed),
				key:   "[archive] max_unchanged_days", hint: "check the export job on the database server; raise max_unchanged_days if the data rarely changes"})
		}
		switch c.OnUnchanged {
		case "fail":
			return r.fail(&failure{check: "changed", exit: exitChanged, cause: "the dump is the same as the one archived on " + prev.Date,
				key: "[archive] on_unchanged", hint: "the export on the source server may have stopped; check it"})
		case "skip":
			if etag != prev.ETag || lastModified != prev.LastModified {
				// A new zip of the same dump: remember it, so that tomorrow's answer can be 304.
				p := prev
				p.ETag, p.LastModified = etag, lastModified
				if err := writeState(c.StateDir, p); err != nil {
					r.log.warning("changed", kv("cause", err.Error()), kv("key", "[archive] state_dir"))
				}
			}
			r.log.warning("changed", append([]fact{kv("cause", "the dump is the same as the last one archived; nothing to do")}, same...)...)
			for _, id := range []string{"archive", "connection", "transfer"} {
				r.log.skipped(id, kv("reason", "unchanged dump (on_unchanged = skip)"))
			}
			return exitWarning
		}
		r.log.ok("changed", append([]fact{kv("unchanged", "yes"), kv("action", "archived anyway (on_unchanged = archive)")}, same...)...)
	} else {
		previous := short(prev.SHA256)
		if previous == "" {
			previous = "none (first run)"
		}
		r.log.ok("changed", kv("sha256", short(sum)), kv("previous", previous), kv("last_archived", prev.Name))
	}

	// 5. archive: NAME.tgz made and proven to be a valid gzip tar.
	tgz := filepath.Join(r.work, name)
	packEnv := []string{"ARCHIVE_COMPRESSOR=" + c.Compressor, "ARCHIVE_COMPRESSION_LEVEL=" + fmt.Sprint(c.CompressionLevel)}
	if reuse {
		// The .tgz is made of the zip's own deflate data: nothing is compressed again.
		packEnv = []string{"ARCHIVE_COMPRESSOR=reuse", "ARCHIVE_COMPRESSION_LEVEL=" + fmt.Sprint(c.CompressionLevel), "ARCHIVE_ZIP=" + zip, "ARCHIVE_MEMBER=" + c.ExpectedFile}
	}
	pack := step{check: "archive", script: "pack.sh", args: []string{sql, tgz}, timeout: c.PackTimeout, causes: packCauses, timeoutKey: "[archive] timeout", before: &unpack,
		env: packEnv}
	res, fail = r.do(ctx, pack, exitArchive)
	if fail != nil {
		return r.fail(fail)
	}
	os.Remove(sql)
	os.Remove(zip)
	tgzSum, tgzSize := res.facts["sha256"], res.facts["size"]
	r.log.ok("archive", kv("name", name), kv("size", tgzSize), kv("sha256", tgzSum), kv("compressor", res.facts["compressor"]))

	// 6. connection: the server answers and the login works.
	dest := r.dest()
	if _, fail = r.do(ctx, dest.call("connection", exitConnection, c.DestTimeout, "check"), exitConnection); fail != nil {
		return r.fail(fail)
	}
	r.log.ok("connection", kv("server", dest.where()))
	if r.dryRun {
		return r.preview(ctx, dest, name, tgzSize)
	}

	// 7. transfer: temporary name, verified, renamed; never a partial file under the final name.
	if fail = r.transfer(ctx, dest, tgz, name, tgzSum, tgzSize); fail != nil {
		return r.fail(fail)
	}

	// Only now does the state move on: a failed upload is retried by the next run.
	if err := writeState(c.StateDir, state{SHA256: sum, Date: r.now.Format("2006-01-02"), Name: name, ArchiveSHA256: tgzSum, Changed: changed,
		ETag: etag, LastModified: lastModified}); err != nil {
		return r.fail(&failure{check: "state", exit: exitFailure, cause: err.Error(), key: "[archive] state_dir",
			hint: "the archive is on the server, but the next run will archive the same dump again; fix state_dir"})
	}
	good := r.record(ctx, dest, name, tgzSum)
	if !r.prune(ctx, dest, name) || !good {
		return exitWarning
	}
	return exitOK
}

// do runs a step and, when it fails, explains why.
func (r *run) do(ctx context.Context, s step, exit int) (stepResult, *failure) {
	t := time.Now()
	res := r.steps.run(ctx, s)
	res.facts["duration"] = time.Since(t).Round(time.Millisecond).String()
	if res.code == 0 && res.err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, &failure{check: s.check, exit: exitFailure, cause: "the run was interrupted by a signal (SIGTERM, SIGINT or SIGHUP)",
			hint: "the next run starts over: nothing was recorded as archived", rerun: r.steps.rerun(s)}
	}
	return res, r.steps.explain(s, res, exit)
}

// fail logs a failed check and the checks it prevented, and gives the exit code.
func (r *run) fail(f *failure) int {
	r.log.failed(f.check, kv("cause", f.cause), kv("detail", f.detail), kv("key", f.key), kv("hint", f.hint), kv("rerun", f.rerun))
	seen := false
	for _, id := range checkIDs {
		if seen {
			r.log.skipped(id, kv("reason", "an earlier check failed"))
		}
		seen = seen || id == f.check
	}
	return f.exit
}

var checkIDs = []string{"url", "download", "zip-content", "changed", "archive", "connection", "transfer"}

func secs(d time.Duration) string { return fmt.Sprint(int(d / time.Second)) }

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// flatten lists the conf errors one per line.
func flatten(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l != "" && !strings.HasSuffix(l, "errors occurred:") && !strings.HasSuffix(l, "error occurred:") {
			out = append(out, l)
		}
	}
	return out
}

// stepsDir finds the step scripts: ARCHIVE_STEPS_DIR, then beside the binary, then the
// installed library folder.
func stepsDir() string {
	if d := os.Getenv("ARCHIVE_STEPS_DIR"); d != "" {
		return d
	}
	exe, err := os.Executable()
	if err == nil {
		exe, _ = filepath.EvalSymlinks(exe)
		dir := filepath.Dir(exe)
		for _, d := range []string{filepath.Join(dir, "steps"), filepath.Join(dir, "..", "lib", "archive", "steps")} {
			if _, err := os.Stat(filepath.Join(d, "fetch.sh")); err == nil {
				return d
			}
		}
	}
	return libStepsDir
}

// libStepsDir is where make install puts the steps; -ldflags can change it.
var libStepsDir = "/usr/local/lib/archive/steps"

// headerValue keeps a response header fit to be sent back in a request: one printable line.
func headerValue(v string) string {
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return v
}

// settled keeps a Last-Modified only when it is at least a minute older than the answer's own
// Date: a file written again within the same second keeps its Last-Modified, so a younger one
// cannot tell two versions apart (RFC 9110, 8.8.2.2). Then the zip is downloaded again.
func settled(lastModified, date string) string {
	lm, err := time.Parse(time.RFC1123, lastModified)
	if err != nil {
		return ""
	}
	if d, err := time.Parse(time.RFC1123, date); err != nil || d.Sub(lm) < time.Minute {
		return ""
	}
	return lastModified
}
