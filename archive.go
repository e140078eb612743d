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

// Exit codes; the user guide's section 7 tells what each means (docs_test.go keeps them equal).
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
	exitVerify     = 17 // archive verify found an archive missing or altered on the server
)

const usage = `usage: archive [-c FILE] [run] [--date YYYY-MM-DD] [--dry-run] [--replace] [--accept-shrink]
       archive [-c FILE] check [--date YYYY-MM-DD] [--mail]
       archive [-c FILE] list [--date YYYY-MM-DD] [--from NAME]
       archive [-c FILE] restore (NAME | --latest) [--to DIR] [--force] [--use-server-checksum]
                                [--identity FILE] [--from NAME]
       archive [-c FILE] verify [--download] [--sample N] [--restore-test [--identity FILE]]
                               [--from NAME]
       archive [-c FILE] status [--date YYYY-MM-DD] [--from NAME]
       archive --version

run      fetch the dump zip over HTTPS, check it, pack it as a dated .tgz, upload it to the
         archive server, prune old archives, log every check (the default command);
         --dry-run does the downloads and local checks and says what it would upload and
         delete, changing nothing on the server or in the state; --replace replaces an
         archive of that day's name holding another dump; --accept-shrink archives a dump
         that shrank past [source] max_shrink (both refused by default)
check    touch everything a run touches (conf, tools, work_dir, source, server, retention),
         one OK/FAILED line each; --mail also sends a test mail
list     the archives on each destination, with what the next prune would delete and why
restore  download an archive, verify it against the sha256 this host recorded at upload (the
         server's NAME.sha256 only with --use-server-checksum), extract the dump into DIR
         (default .), never over an existing file unless --force; --latest: the newest
         archive this host recorded; --identity FILE decrypts an encrypted NAME.tgz.age
verify   the scrub: every archive this host uploaded, checked on the server against the
         sha256 recorded at upload (on the server where it can hash, else downloaded), one
         line each: OK, DIFFERS, MISSING or UNRECORDED; logged and mailed like a run;
         --restore-test also restores the newest into a private folder, proves its dump
         and removes it
status   the last run and the last verify, for humans (state_dir/last-run.json)

  -c FILE        the conf (default /etc/archive/archive.conf, else ./archive.conf)
  --from NAME    list, restore, verify, status: one destination, NAME of [destination NAME] or
                 default for [destination] (restore's default: the first)
  --date DAY     as of that day: archive name and retention ages (default today)
  --version      print the version

Example: archive -c /etc/archive/archive.conf run --dry-run

Cron, every night at 02:30 (output goes to the log; cron mails only if archive cannot start):
  30 2 * * *  archive  /usr/local/bin/archive -c /etc/archive/archive.conf >/dev/null

Exit codes: 0 success, 1 failure outside the checks, 2 usage or conf error, 3 warning (also:
one destination of several failed while another got a verified copy),
4 another run is active, 10-16 failure at check url, download, zip-content, changed, archive,
connection, transfer, 17 verify found an archive missing or altered.
`

func main() {
	// A closed stdout (archive | head) must not kill a run halfway: writes then fail with EPIPE
	// instead. Notify, not Ignore, so that the steps still get the default SIGPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	os.Exit(cli(os.Args[1:]))
}

// command is one subcommand: the flags it takes and what it does with them.
type command struct {
	flags func(fs *flag.FlagSet, o *options)
	args  int // how many words it takes after its name (restore: NAME, or none with --latest)
	run   func(o *options) int
}

// options are every flag's value; each command declares only its own.
type options struct {
	conf, date   string
	dryRun, mail bool
	latest       bool
	// run: the operator's choice to replace an archive holding another dump, or to archive a
	// dump that shrank past max_shrink; never a conf key, so never the default of a night.
	replace, acceptShrink bool
	restore               restoreOptions
	download              bool // verify: read every archive back, even where the server hashes
	restoreTest           bool // verify: restore the newest archive into a private folder, then remove it
	sample                int  // verify: how many archives; -1: [verify] sample
	words                 []string
	now                   time.Time
}

func dateFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.date, "date", "", "as of this day (YYYY-MM-DD)")
}

// fromFlag is --from NAME: the one destination a command reads ([destination] is "default").
func fromFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.restore.from, "from", "", "the destination: "+defaultDest+" for [destination], NAME for [destination NAME]")
}

var commands = map[string]command{
	"run": {flags: func(fs *flag.FlagSet, o *options) {
		dateFlag(fs, o)
		fs.BoolVar(&o.dryRun, "dry-run", false, "change nothing on the server or in the state")
		fs.BoolVar(&o.replace, "replace", false, "replace an archive of the same name that holds another dump")
		fs.BoolVar(&o.acceptShrink, "accept-shrink", false, "archive a dump that shrank past [source] max_shrink")
	}, run: nightly},
	"check": {flags: func(fs *flag.FlagSet, o *options) {
		dateFlag(fs, o)
		fs.BoolVar(&o.mail, "mail", false, "also send a test mail")
	}, run: func(o *options) int { return check(o.conf, o.now, o.mail) }},
	"list": {flags: func(fs *flag.FlagSet, o *options) {
		dateFlag(fs, o)
		fromFlag(fs, o)
	}, run: func(o *options) int { return list(o.conf, o.restore.from, o.now) }},
	"verify": {flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.download, "download", false, "download every archive, even where the server can hash it")
		fs.IntVar(&o.sample, "sample", -1, "check only N archives, the newest and the oldest among them")
		fs.BoolVar(&o.restoreTest, "restore-test", false, "also restore the newest archive into a private folder, prove the dump, remove it")
		fs.StringVar(&o.restore.identity, "identity", "", "the age identity for --restore-test of an encrypted archive")
		fromFlag(fs, o)
	}, run: verifyArchives},
	"status": {flags: func(fs *flag.FlagSet, o *options) {
		dateFlag(fs, o)
		fromFlag(fs, o)
	}, run: func(o *options) int { return status(o.conf, o.restore.from, o.now) }},
	"restore": {args: 1, flags: func(fs *flag.FlagSet, o *options) {
		dateFlag(fs, o)
		fs.BoolVar(&o.latest, "latest", false, "the newest archive this host recorded")
		fs.StringVar(&o.restore.to, "to", ".", "the folder to extract the dump into")
		fs.BoolVar(&o.restore.serverSum, "use-server-checksum", false, "trust NAME.sha256 on the server when this host has no record")
		fs.BoolVar(&o.restore.force, "force", false, "replace a file of the dump's name in --to")
		fs.StringVar(&o.restore.identity, "identity", "", "the age identity file that decrypts NAME.tgz.age")
		fromFlag(fs, o)
	}, run: func(o *options) int {
		if len(o.words) == 1 {
			o.restore.name = o.words[0]
		}
		if (o.restore.name == "") == !o.latest {
			return usageError("restore wants an archive NAME or --latest: one of them", "archive list shows the names")
		}
		return restore(o.conf, o.now, o.restore)
	}},
}

func cli(args []string) int {
	o := &options{}
	// Before the command: -c FILE, --version, -h. Anything else starts the command's own
	// flags, the command being run when no word names one (archive -c FILE --date DAY).
globals:
	for len(args) > 0 {
		switch a := strings.TrimLeft(args[0], "-"); {
		case !strings.HasPrefix(args[0], "-"):
			break globals
		case a == "version":
			fmt.Println("archive", version)
			return exitOK
		case a == "h" || a == "help":
			fmt.Fprint(os.Stderr, usage)
			return exitOK
		case a == "c" && len(args) > 1:
			o.conf, args = args[1], args[2:]
		case strings.HasPrefix(a, "c="):
			o.conf, args = a[2:], args[1:]
		default:
			break globals
		}
	}
	name, rest := "run", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	// The zip's structure, for the steps unpack.sh and pack.sh (zipmember.go); not in the usage.
	switch name {
	case "unzip-member":
		return unzipMember(rest)
	case "pack-member":
		return packMember(rest)
	}
	cmd, ok := commands[name]
	if !ok {
		return usageError(fmt.Sprintf("unknown command %q", name), "the commands are run, check, list, restore, verify and status (archive -h)")
	}
	fs := flag.NewFlagSet("archive "+name, flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder)) // usageError says it, in the house's two lines
	fs.StringVar(&o.conf, "c", o.conf, "conf file")
	cmd.flags(fs, o)
	// Flags may stand before or after a command's word (restore NAME --to DIR).
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(os.Stderr, usage)
				return exitOK
			}
			msg := err.Error()
			if f, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
				msg = "does not take --" + strings.TrimPrefix(f, "-")
			}
			return usageError(fmt.Sprintf("archive %s %s", name, msg), "archive -h lists each command's flags")
		}
		if fs.NArg() == 0 {
			break
		}
		o.words = append(o.words, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(o.words) > cmd.args {
		return usageError(fmt.Sprintf("archive %s: unexpected argument %q", name, o.words[cmd.args]), "archive -h shows what each command takes")
	}
	o.now = time.Now()
	if o.date != "" {
		d, err := time.ParseInLocation("2006-01-02", o.date, time.Local)
		if err != nil {
			return usageError(fmt.Sprintf("--date wants YYYY-MM-DD, got %q", o.date), "for example --date 2026-11-28")
		}
		o.now = time.Date(d.Year(), d.Month(), d.Day(), o.now.Hour(), o.now.Minute(), o.now.Second(), 0, time.Local)
	}
	o.conf = findConf(o.conf)
	return cmd.run(o)
}

// printError is how every command by hand reports a failure: age's two lines, error then hint.
func printError(cause, hint string) {
	fmt.Fprintln(os.Stderr, "archive: error: "+cause)
	if hint != "" {
		fmt.Fprintln(os.Stderr, "archive: hint: "+hint)
	}
}

func usageError(cause, hint string) int {
	printError(cause, hint)
	return exitUsage
}

// nightly is the whole run, in the order it happens at 2 a.m. It returns the exit code.
func nightly(o *options) int {
	conf, confErr := loadConf(o.conf)
	j := startJob(conf, o)
	now := o.now
	defer j.log.close()
	if f := j.ready(confErr); f != nil {
		return j.finish(f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if f := j.lock(); f != nil {
		return j.finish(f)
	}
	defer j.unlock()
	// Read once, here: its validators make the download conditional; a state file that cannot
	// be read fails check "changed", after the download.
	prev, stateErr := readState(conf.StateDir)

	// A destination that lacks the last archived dump (its delivery failed, or it is new) gets it
	// from this run, even unchanged; so the zip is then downloaded, never answered by a 304.
	targets, lagging := j.targets(prev)

	if f := j.probeSource(ctx); f != nil { // 1. url
		return j.finish(f)
	}
	zip, f := j.download(ctx, prev, len(lagging) == 0) // 2. download (a 304 stands for the last archived zip)
	if f != nil {
		return j.finish(f)
	}
	if f := j.unpack(ctx, &zip, prev); f != nil { // 3. zip-content
		return j.finish(f)
	}
	if stateErr != nil { // 4. changed
		return j.finish(stateFailure(stateErr))
	}
	d := decide(conf, prev, zip.dumpSHA256, zip.dumpSize, now, o.acceptShrink)
	if d.unchanged && d.action == skipDump && len(lagging) > 0 {
		d.action, d.catchUp, targets = archiveDump, labels(lagging), lagging
	}
	if f := j.changed(d, zip, prev); f != nil || d.action == skipDump {
		return j.finish(f)
	}
	tgz, f := j.pack(ctx, zip) // 5. archive
	if f != nil {
		return j.finish(f)
	}
	return j.finish(j.deliver(ctx, zip, tgz, d, targets)) // 6. connection, 7. transfer, each destination
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
