package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The operator's commands: check, list, restore, status. They print for a person, not the log.

// loadForOps loads the conf for a command run by hand; a broken conf prints every problem.
func loadForOps(path string) (*Conf, bool) {
	conf, err := loadConf(path)
	if err != nil {
		errs := confErrors(err)
		if len(errs) == 1 {
			printError(errs[0], "")
		} else {
			printError(fmt.Sprintf("the conf %q has %d problems:", path, len(errs)), "")
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, "  "+e)
			}
		}
		fmt.Fprintln(os.Stderr, "archive: hint: fix the conf; archive.conf documents every key with its default")
		return conf, false
	}
	return conf, true
}

// opsJob is the job of a command run by hand: its own folder in work_dir (where the space for a
// dump is), no log file, output for a person. lock is the run's lock when the command holds it.
func opsJob(conf *Conf, now time.Time, lock *lockFile) (*job, func(), error) {
	if err := privateDir(conf.WorkDir, "work_dir"); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp(conf.WorkDir, "ops-")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot write in work_dir %q: %v", conf.WorkDir, plainErr(err))
	}
	j := &job{conf: conf, log: &logger{runID: "ops"}, steps: newStepRunner(dir, lock), work: dir, now: now, res: &result{}}
	return j, func() { os.RemoveAll(dir) }, nil
}

// startOps loads the conf and makes the job of a command that reads the server; on a problem it
// has said why and gives the exit code instead.
func startOps(path string, now time.Time) (*job, func(), int) {
	conf, ok := loadForOps(path)
	if !ok {
		return nil, nil, exitUsage
	}
	j, done, err := opsJob(conf, now, nil)
	if err != nil {
		printError(err.Error(), "[archive] work_dir must be a folder the user running archive can write")
		return nil, nil, exitFailure
	}
	return j, done, exitOK
}

// failed reports a failed step of a command by hand, and gives its exit code.
func failed(what string, f *failure) int {
	cause := what + ": " + f.cause
	if f.detail != "" {
		cause += " (the step said: " + f.detail + ")"
	}
	hint := f.hint
	if f.key != "" {
		hint = "check " + f.key + ": " + hint
	}
	printError(cause, hint)
	return exitFailure
}

// checker prints one line per item and remembers whether all were OK.
type checker struct{ failed int }

func (c *checker) ok(item, facts string) { fmt.Printf("OK      %-14s %s\n", item, facts) }
func (c *checker) fail(item, cause, hint string) {
	c.failed++
	fmt.Printf("FAILED  %-14s %s\n", item, cause)
	if hint != "" {
		fmt.Printf("        %-14s hint: %s\n", "", hint)
	}
}
func (c *checker) failure(item string, f *failure) {
	cause := f.cause
	if f.detail != "" {
		cause += " (" + f.detail + ")"
	}
	hint := f.hint
	if f.key != "" {
		hint = f.key + ": " + hint
	}
	c.fail(item, cause, hint)
}

// check is the preflight: everything a night touches, touched now, one line each.
func check(path string, now time.Time, withMail bool) int {
	ck := &checker{}
	conf, ok := loadForOps(path)
	if !ok {
		return exitUsage
	}
	ck.ok("conf", path)
	for _, w := range conf.Warnings {
		fmt.Printf("WARNING %-14s %s\n", "conf", w)
	}
	// The probe on the server must not meet a run cleaning up leftovers: take the run's lock.
	lock, err := takeLock(conf.StateDir)
	if err != nil {
		ck.fail("lock", err.Error(), "wait for the run to end, then check again")
		if errors.Is(err, errLocked) {
			return exitLocked
		}
		return exitFailure
	}
	defer lock.release()

	if dir := stepsDir(); fileExists(filepath.Join(dir, "fetch.sh")) {
		ck.ok("steps", dir)
	} else {
		ck.fail("steps", "no step scripts in "+dir, "reinstall archive, or set ARCHIVE_STEPS_DIR to the folder of fetch.sh")
	}
	for _, tool := range toolsNeeded(conf) {
		if v, err := toolVersion(tool); err != nil {
			ck.fail("tool "+tool, "not found in PATH", "install it (see the user guide's requirements)")
		} else {
			ck.ok("tool "+tool, v)
		}
	}

	need := neededSpace(conf.StateDir)
	if err := os.MkdirAll(conf.WorkDir, 0o700); err != nil {
		ck.fail("work_dir", err.Error(), "[archive] work_dir must be a folder the user can write")
	} else if probe, err := os.CreateTemp(conf.WorkDir, ".probe-"); err != nil {
		ck.fail("work_dir", "cannot write in "+conf.WorkDir+": "+plainErr(err), "fix its owner or mode")
	} else {
		probe.Close()
		os.Remove(probe.Name())
		var st syscall.Statfs_t
		syscall.Statfs(conf.WorkDir, &st)
		free := int64(st.Bavail) * int64(st.Bsize)
		switch {
		case need > 0 && free < need:
			ck.fail("work_dir", fmt.Sprintf("%s free, but the last run needed about %s (zip + dump + archive)", human(free), human(need)), "free space in [archive] work_dir")
		default:
			ck.ok("work_dir", fmt.Sprintf("%s writable, %s free", conf.WorkDir, human(free)))
		}
	}
	if err := os.MkdirAll(conf.StateDir, 0o700); err != nil {
		ck.fail("state_dir", err.Error(), "[archive] state_dir must be a folder the user can write")
	} else if _, err := readState(conf.StateDir); err != nil {
		ck.fail("state_dir", err.Error(), "fix or remove the state file")
	} else {
		ck.ok("state_dir", conf.StateDir)
	}

	r, done, err := opsJob(conf, now, lock)
	if err != nil {
		ck.fail("work_dir", err.Error(), "")
		return exitFailure
	}
	defer done()
	ctx := context.Background()
	if conf.EncryptTo != "" {
		// Encrypted, never decrypted: the backup host holds no identity.
		in := filepath.Join(r.work, "probe.tgz")
		os.WriteFile(in, []byte("archive check\n"), 0o600)
		res, fail := r.do(ctx, step{check: "archive", script: "encrypt.sh", args: []string{in, in + encryptedExt}, env: []string{"ARCHIVE_RECIPIENTS=" + conf.EncryptTo},
			timeout: time.Minute, causes: encryptCauses, timeoutKey: "[archive] timeout"}, exitArchive)
		if fail != nil {
			ck.failure("encryption", fail)
		} else {
			ck.ok("encryption", fmt.Sprintf("age, to %s recipients%s: a probe encrypted", res.facts["recipients"], recipientsOf(conf.EncryptTo)))
		}
	}
	res, fail := r.do(ctx, sourceStep(conf, "url", 0, "probe"), exitURL)
	if fail != nil {
		ck.failure("source", fail)
	} else {
		ck.ok("source", fmt.Sprintf("%s: HTTP %s, TLS verified, size %s, last modified %s", conf.URL, res.facts["status"], orUnknown(res.facts["size"]), orUnknown(res.facts["last_modified"])))
	}

	for _, d := range r.dests() {
		checkDest(ck, r, d, now)
	}

	if withMail {
		if conf.Mail.Send == "never" || conf.Mail.To == "" {
			ck.fail("mail", "[mail] send is never or to is empty: nothing to test", "set [mail] send and to")
		} else if fail := sendMail(conf, r.work, "[archive] test message from "+hostname(), "This is a test message from `archive check --mail`.\nIf you read it, the nightly report will reach you too.\n", ""); fail != nil {
			ck.failure("mail", fail)
		} else {
			ck.ok("mail", "test message sent to "+conf.Mail.To+" via "+conf.Mail.Transport)
		}
	}
	if ck.failed > 0 {
		fmt.Printf("\n%d item(s) FAILED\n", ck.failed)
		return exitFailure
	}
	fmt.Println("\nall OK")
	return exitOK
}

// checkDest is check's part for one destination: login, a probe written, verified, renamed and
// deleted, and what a run today would prune.
func checkDest(ck *checker, r *job, d dest, now time.Time) {
	ctx, conf := context.Background(), r.conf
	item := func(s string) string {
		if len(conf.Dests) > 1 {
			return s + " " + d.label()
		}
		return s
	}
	if fail := r.connect(ctx, d); fail != nil {
		ck.failure(item("destination"), fail)
		return
	}
	ck.ok(item("destination"), "login to "+d.where())
	probe := probePrefix + strconv.FormatInt(time.Now().UnixNano(), 36)
	local := filepath.Join(r.work, "probe")
	body := "archive check\n"
	os.WriteFile(local, []byte(body), 0o600)
	if up, fail := r.upload(ctx, d, "transfer", exitTransfer, local, probe, sha256Hex(body), strconv.Itoa(len(body))); fail != nil {
		ck.failure(item("write probe"), fail)
	} else if _, fail := r.do(ctx, d.quick("transfer", "delete", probe), exitTransfer); fail != nil {
		ck.failure(item("write probe"), fail)
	} else if up.temp == probe {
		ck.ok(item("write probe"), "wrote "+probe+" (whole or not at all: "+d.Protocol+" has no rename), verified, deleted")
	} else {
		ck.ok(item("write probe"), "wrote "+up.temp+", verified, renamed to "+probe+", deleted")
	}
	files, fail := r.list(ctx, d, "prune", exitWarning)
	if fail != nil {
		ck.failure(item("retention"), fail)
		return
	}
	name := archiveName(conf.NameFormat, now)
	items, _ := planPrune(withName(files, name), conf.NameFormat, now, d.retention(), name)
	n := 0
	for _, it := range items {
		if it.Delete {
			n++
			fmt.Printf("        %-14s a run today would delete %s (%s)\n", "", it.Name, it.Reason)
		}
	}
	ck.ok(item("retention"), fmt.Sprintf("%d archives on the server, a run today would delete %d", len(items)-1, n))
}

// pick is the destinations a command reads: the one --from names, or all of them; a name that is
// no destination is a failure that lists the names there are.
func (j *job) pick(from string) ([]dest, *failure) {
	all := j.dests()
	if from == "" {
		return all, nil
	}
	for _, d := range all {
		if d.label() == from {
			return []dest{d}, nil
		}
	}
	return nil, &failure{exit: exitUsage, cause: fmt.Sprintf("--from %q: no such destination", from),
		hint: "the destinations are " + labels(all) + " ([destination] is " + defaultDest + ", [destination NAME] is NAME)"}
}

// toolsNeeded lists the programs a run with this conf calls.
func toolsNeeded(c *Conf) []string {
	tools := []string{"curl", "sha256sum", "tar", "gzip"}
	if c.Compressor == "pigz" {
		tools = append(tools, "pigz")
	}
	for _, d := range c.Dests {
		for _, t := range protocolOf(d.Protocol).tools {
			if !slices.Contains(tools, t) {
				tools = append(tools, t)
			}
		}
	}
	if c.Mail.Send != "never" {
		tools = append(tools, "mutt")
	}
	if c.EncryptTo != "" {
		tools = append(tools, "age")
	}
	return tools
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func toolVersion(tool string) (string, error) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return "", err
	}
	flag := "--version"
	switch tool {
	case "sftp": // no version flag: it is OpenSSH's, as ssh
		return path + ": OpenSSH's sftp", nil
	case "ssh":
		flag = "-V"
	case "unzip", "mutt":
		flag = "-v"
	}
	out, _ := exec.Command(path, flag).CombinedOutput()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return path + ": " + strings.TrimSpace(first), nil
}

// list prints the archives on each destination (or the one --from names) and what the next prune
// would do with each.
func list(path, from string, now time.Time) int {
	r, done, code := startOps(path, now)
	if r == nil {
		return code
	}
	defer done()
	ds, f := r.pick(from)
	if f != nil {
		return usageError(f.cause, f.hint)
	}
	code = exitOK
	for i, d := range ds {
		if i > 0 {
			fmt.Println()
		}
		if c := listOne(r, d, now); c != exitOK {
			code = c
		}
	}
	return code
}

func listOne(r *job, d dest, now time.Time) int {
	conf := r.conf
	files, fail := r.list(context.Background(), d, "list", exitFailure)
	if fail != nil {
		return failed("cannot list "+d.where(), fail)
	}
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Name] = true
	}
	items, ignored := planPrune(files, conf.NameFormat, now, d.retention(), "")
	title := d.where()
	if len(conf.Dests) > 1 {
		title = d.label() + ": " + title
	}
	fmt.Printf("%s\n\n%-24s %-10s %10s %6s  %s\n", title, "NAME", "DATE", "SIZE", "AGE", "NEXT PRUNE")
	for _, it := range items {
		action := "keep"
		if it.Delete {
			action = "DELETE"
		}
		if !listed[it.Name+sidecarExt] {
			action += " (no .sha256 beside it)"
		}
		fmt.Printf("%-24s %-10s %10s %5dd  %s: %s\n", it.Name, it.Date.Format("2006-01-02"), human(it.Size), it.Age, action, it.Reason)
	}
	for _, name := range ignored {
		if base, ok := strings.CutSuffix(name, sidecarExt); ok && listed[base] {
			continue
		}
		fmt.Printf("%-24s %-10s %10s %6s  ignored: not a name that name_format %q makes\n", shown(name), "-", "", "-", conf.NameFormat)
	}
	return exitOK
}

// restoreOptions are restore's own flags.
type restoreOptions struct {
	name, to string
	// serverSum: the operator trusts the server's NAME.sha256 when this host has no record (a
	// new machine); force: an existing file of the dump's name in --to is replaced.
	serverSum, force bool
	// identity: the age identity file that decrypts a NAME.tgz.age; read by age, never logged.
	identity string
	from     string // the destination to restore from; "": the first ([destination])
}

// restore downloads an archive, proves it is the one uploaded, and extracts the dump. The proof
// is the sha256 this host recorded at upload; the server's NAME.sha256, which whoever can write
// the archive can write too, only when the operator says so. --latest is the newest archive this
// host recorded, never merely the newest name on the server.
func restore(path string, now time.Time, o restoreOptions) int {
	r, done, code := startOps(path, now)
	if r == nil {
		return code
	}
	defer done()
	conf := r.conf
	ds, f := r.pick(o.from)
	if f != nil {
		return usageError(f.cause, f.hint)
	}
	ctx, d := context.Background(), ds[0]
	refuse := func(cause, hint string) int {
		printError("restore: "+cause, hint)
		return exitFailure
	}
	files, fail := r.list(ctx, d, "list", exitFailure)
	if fail != nil {
		return failed("cannot list "+d.where(), fail)
	}
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Name] = true
	}
	recs := readRecords(d.StateDir)
	name := o.name
	if name == "" {
		var ours []remoteFile
		for _, f := range files {
			if _, ok := recs[f.Name]; ok {
				ours = append(ours, f)
			}
		}
		items, _ := planPrune(ours, conf.NameFormat, now, retention{History: true, KeepDays: 1 << 30, KeepMin: 1}, "")
		if len(items) == 0 {
			return refuse(fmt.Sprintf("no archive on %s that this host recorded in %s", d.where(), filepath.Join(d.StateDir, recordsFile)),
				"archive list shows the archives; name one, with --use-server-checksum if this host never uploaded it")
		}
		name = items[0].Name
	}
	if !listed[name] {
		return refuse(fmt.Sprintf("no archive named %q on %s", shown(name), d.where()), "archive list shows them")
	}

	want, from := recs[name], "this host's record in "+filepath.Join(d.StateDir, recordsFile)
	if want == "" {
		if !o.serverSum {
			return refuse(fmt.Sprintf("no sha256 recorded for %s by this host: its integrity cannot be proven", name),
				"restore an archive this host uploaded, or add --use-server-checksum to trust "+name+sidecarExt+" on the server (anyone who can write the archive there can write it too)")
		}
		if !listed[name+sidecarExt] {
			return refuse(fmt.Sprintf("no sha256 for %s: this host has no record and the server has no %s", name, name+sidecarExt), "restore another archive")
		}
		side := filepath.Join(r.work, "sidecar")
		if _, fail := r.do(ctx, d.quick("restore", "get", name+sidecarExt, side), exitFailure); fail != nil {
			return failed("cannot download "+name+sidecarExt, fail)
		}
		data, _ := os.ReadFile(side)
		sum, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		if !hexSum.MatchString(sum) {
			return refuse(name+sidecarExt+" on the server is not a sha256 line", "restore another archive; tell the server's administrator")
		}
		want, from = sum, name+sidecarExt+" on the server, trusted as asked by --use-server-checksum"
	}

	if strings.HasSuffix(name, encryptedExt) && o.identity == "" {
		return refuse(name+" is encrypted: add --identity FILE, the age identity of one of its recipients",
			"the public keys it was encrypted to are in [archive] encrypt_to"+recipientsOf(conf.EncryptTo)+"; archive check shows them too")
	}
	if o.identity != "" {
		if _, err := os.Stat(o.identity); err != nil {
			return refuse(fmt.Sprintf("--identity %q: %v", o.identity, plainErr(err)), "give the path of an age identity file (made with age-keygen)")
		}
	}
	if err := os.MkdirAll(o.to, 0o700); err != nil {
		return refuse(fmt.Sprintf("cannot create %q: %v", o.to, plainErr(err)), "choose another --to")
	}
	tgz := filepath.Join(r.work, name)
	if _, fail := r.do(ctx, d.long("restore", "get", name, tgz), exitFailure); fail != nil {
		return failed("cannot download "+name, fail)
	}
	abs, _ := filepath.Abs(o.to)
	env := []string{"ARCHIVE_EXPECTED_FILE=" + conf.ExpectedFile, "ARCHIVE_FORCE=" + yesNo(o.force)}
	dump := readFacts(d.StateDir)[name].dump
	if dump != "" {
		env = append(env, "ARCHIVE_DUMP_SHA256="+dump)
	}
	if strings.HasSuffix(name, encryptedExt) {
		abs, _ := filepath.Abs(o.identity)
		env = append(env, "ARCHIVE_IDENTITY_FILE="+abs)
	}
	res, fail := r.do(ctx, step{check: "restore", script: "extract.sh", args: []string{tgz, want, abs}, env: env, timeout: conf.PackTimeout,
		causes: extractCauses, timeoutKey: "[archive] timeout"}, exitFailure)
	if fail != nil {
		return failed(name, fail)
	}
	proof := ""
	if dump != "" {
		proof = " (matches the dump's record)"
	}
	fmt.Printf("restored %s from %s\n  archive sha256 %s (matches %s)\n  dump    sha256 %s%s, %s\n", res.facts["path"], d.remote(name), want, from, res.facts["sha256"], proof, human(atoi64(res.facts["size"])))
	return exitOK
}

// recipientsOf lists the public keys of a recipients file, for a message: they are not secret.
func recipientsOf(path string) string {
	data, err := os.ReadFile(path)
	if path == "" || err != nil {
		return ""
	}
	var keys []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, short(l)+"...")
		}
	}
	return " (" + path + ": " + strings.Join(keys, ", ") + ")"
}

// status prints the last run for a person; its exit code is the last run's outcome (0, 3 or 1),
// so that a monitoring check can call it. With --from, only that destination's lines.
func status(path, from string, now time.Time) int {
	conf, ok := loadForOps(path)
	if !ok {
		return exitUsage
	}
	if _, f := (&job{conf: conf}).pick(from); f != nil {
		return usageError(f.cause, f.hint)
	}
	other := func(dest string) bool { return from != "" && dest != "" && dest != from }
	lr, err := readLastRun(conf.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		printError("no run recorded yet in "+conf.StateDir, "the first run writes "+lastRunFile+" there; archive run --dry-run tries one")
		return exitFailure
	}
	if err != nil {
		printError(err.Error(), "the next run writes it again")
		return exitFailure
	}
	fmt.Printf("last run      %s (run %s, as of %s): %s, exit %d, %s\n", lr.Started.Local().Format("2006-01-02 15:04:05"), lr.RunID, lr.Date, lr.Outcome, lr.ExitCode, lr.Finished.Sub(lr.Started).Round(time.Second))
	if lr.LastSuccess != nil {
		fmt.Printf("last success  %s (%s ago)\n", lr.LastSuccess.Local().Format("2006-01-02 15:04:05"), now.Sub(*lr.LastSuccess).Round(time.Hour))
	} else {
		fmt.Println("last success  never")
	}
	if st, err := readState(conf.StateDir); err == nil && st.Changed != "" {
		since, _ := time.Parse("2006-01-02", st.Changed)
		fmt.Printf("last new dump %s (%d days ago), archived as %s\n", st.Changed, int(day(now).Sub(since).Hours()/24), st.Name)
	}
	if lr.Archive != "" {
		fmt.Printf("archive       %s, %s, sha256 %s\n", lr.Archive, human(lr.ArchiveSize), short(lr.ArchiveSHA256))
	}
	for _, c := range lr.Checks {
		if !other(c.Facts["destination"]) {
			fmt.Printf("  %-8s %-12s %s\n", c.Status, c.Check, c.factsLine("rerun", "hint"))
		}
	}
	for _, d := range lr.Destinations {
		if !other(d.Name) {
			fmt.Printf("destination   %-12s %-10s %s %s\n", d.Name, d.Outcome, d.Where, d.Note)
		}
	}
	if lv, err := readResult(conf.StateDir, lastVerifyFile); err == nil {
		fmt.Printf("last verify   %s: %s, exit %d, %s\n", lv.Started.Local().Format("2006-01-02 15:04:05"), lv.Outcome, lv.ExitCode, lv.Archive)
		if lv.Failure != nil {
			fmt.Printf("              %s\n", lv.Failure.Cause)
		}
	}
	switch lr.Outcome {
	case "SUCCESS":
		return exitOK
	case "WARNING":
		return exitWarning
	}
	return exitFailure
}

// ping tells [monitor] ping_url; a ping that fails is logged, never fatal.
func ping(conf *Conf, log *logger, event string, lock *lockFile) {
	if conf.PingURL == "" {
		return
	}
	env := []string{"ARCHIVE_PING_URL=" + conf.PingURL, "ARCHIVE_TIMEOUT=" + secs(conf.PingTimeout)}
	if conf.PingCA != "" {
		env = append(env, "ARCHIVE_CA_FILE="+conf.PingCA)
	}
	res := newStepRunner(os.TempDir(), lock).exec(context.Background(), step{check: "monitor", script: "ping.sh", args: []string{event}, env: env, timeout: 3*conf.PingTimeout + 5*time.Second})
	if res.code != 0 || res.err != nil {
		log.warning("monitor", kv("event", event), kv("cause", "the monitoring ping failed"), kv("detail", strings.Join(res.tail, " | ")), kv("key", "[monitor] ping_url"))
		return
	}
	log.info("monitor", kv("event", event), kv("ping", "sent"))
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
