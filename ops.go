package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
		fmt.Fprintf(os.Stderr, "archive: the conf %q has problems:\n", path)
		for _, e := range flatten(err) {
			fmt.Fprintln(os.Stderr, "  "+e)
		}
		return conf, false
	}
	return conf, true
}

// opsRun is a run for a command by hand: its own folder in work_dir (where the space for a dump
// is), no log file, output on stdout.
func opsRun(conf *Conf, now time.Time) (*run, func(), error) {
	if err := os.MkdirAll(conf.WorkDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("cannot create work_dir %q: %v", conf.WorkDir, plainErr(err))
	}
	dir, err := os.MkdirTemp(conf.WorkDir, "ops-")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot write in work_dir %q: %v", conf.WorkDir, plainErr(err))
	}
	log := &logger{runID: "ops"}
	r := &run{conf: conf, log: log, steps: &runner{stepsDir: stepsDir(), tmpDir: dir}, work: dir, now: now}
	return r, func() { os.RemoveAll(dir) }, nil
}

// startOps loads the conf and makes the run of a command that reads the server; on a problem it
// has said why and gives the exit code instead.
func startOps(path string, now time.Time) (*run, func(), int) {
	conf, ok := loadForOps(path)
	if !ok {
		return nil, nil, exitUsage
	}
	r, done, err := opsRun(conf, now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "archive:", err)
		return nil, nil, exitFailure
	}
	return r, done, exitOK
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

	r, done, err := opsRun(conf, now)
	if err != nil {
		ck.fail("temp", err.Error(), "")
		return exitFailure
	}
	defer done()
	ctx := context.Background()
	src := []string{"ARCHIVE_URL=" + conf.URL, "ARCHIVE_TIMEOUT=" + secs(conf.Timeout), "ARCHIVE_RETRIES=0"}
	if conf.SourceCA != "" {
		src = append(src, "ARCHIVE_CA_FILE="+conf.SourceCA)
	}
	res, fail := r.do(ctx, step{check: "url", script: "fetch.sh", args: []string{"probe"}, env: src, timeout: conf.Timeout + 30*time.Second, causes: fetchCauses}, exitURL)
	if fail != nil {
		ck.failure("source", fail)
	} else {
		ck.ok("source", fmt.Sprintf("%s: HTTP %s, TLS verified, size %s, last modified %s", conf.URL, res.facts["status"], orUnknown(res.facts["size"]), orUnknown(res.facts["last_modified"])))
	}

	d := r.dest()
	if _, fail := r.do(ctx, d.call("connection", exitConnection, conf.DestTimeout, "check"), exitConnection); fail != nil {
		ck.failure("destination", fail)
	} else {
		ck.ok("destination", "login to "+d.where())
		probe := probePrefix + strconv.FormatInt(time.Now().UnixNano(), 36)
		local := filepath.Join(r.work, "probe")
		os.WriteFile(local, []byte("archive check\n"), 0o600)
		body := "archive check\n"
		if _, fail := r.upload(ctx, d, "transfer", exitTransfer, local, probe, sha256Hex(body), strconv.Itoa(len(body))); fail != nil {
			ck.failure("write probe", fail)
		} else if _, fail := r.do(ctx, d.call("transfer", exitTransfer, conf.DestTimeout, "delete", probe), exitTransfer); fail != nil {
			ck.failure("write probe", fail)
		} else {
			ck.ok("write probe", "wrote "+tempName(probe)+", verified, renamed to "+probe+", deleted")
		}
		files, fail := r.list(ctx, d, "prune", exitWarning)
		if fail != nil {
			ck.failure("retention", fail)
		} else {
			name := archiveName(conf.NameFormat, now)
			items, _ := planPrune(withName(files, name), conf.NameFormat, now, retention{conf.History, conf.KeepDays, conf.KeepMin}, name)
			n := 0
			for _, it := range items {
				if it.Delete {
					n++
					fmt.Printf("        %-14s a run today would delete %s (%s)\n", "", it.Name, it.Reason)
				}
			}
			ck.ok("retention", fmt.Sprintf("%d archives on the server, a run today would delete %d", len(items)-1, n))
		}
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

// toolsNeeded lists the programs a run with this conf calls.
func toolsNeeded(c *Conf) []string {
	tools := []string{"curl", "unzip", "sha256sum", "tar", "gzip"}
	if c.Compressor == "pigz" {
		tools = append(tools, "pigz")
	}
	tools = append(tools, map[string][]string{"sftp": {"ssh", "rsync"}, "smb": {"smbclient"}, "nfs": {"mountpoint"}}[c.Protocol]...)
	if c.Mail.Send != "never" {
		tools = append(tools, "mutt")
	}
	return tools
}

func toolVersion(tool string) (string, error) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return "", err
	}
	flag := "--version"
	switch tool {
	case "ssh":
		flag = "-V"
	case "unzip", "mutt":
		flag = "-v"
	}
	out, _ := exec.Command(path, flag).CombinedOutput()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return path + ": " + strings.TrimSpace(first), nil
}

// list prints the archives on the server and what the next prune would do with each.
func list(path string, now time.Time) int {
	r, done, code := startOps(path, now)
	if r == nil {
		return code
	}
	defer done()
	conf := r.conf
	files, fail := r.list(context.Background(), r.dest(), "list", exitFailure)
	if fail != nil {
		fmt.Fprintf(os.Stderr, "archive: cannot list %s: %s (%s)\nhint: %s: %s\n", r.dest().where(), fail.cause, fail.detail, fail.key, fail.hint)
		return exitFailure
	}
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Name] = true
	}
	items, ignored := planPrune(files, conf.NameFormat, now, retention{conf.History, conf.KeepDays, conf.KeepMin}, "")
	fmt.Printf("%s\n\n%-24s %-10s %10s %6s  %s\n", r.dest().where(), "NAME", "DATE", "SIZE", "AGE", "NEXT PRUNE")
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
		fmt.Printf("%-24s %-10s %10s %6s  ignored: not a name that name_format %q makes\n", name, "-", "", "-", conf.NameFormat)
	}
	return exitOK
}

// restore downloads an archive, proves it is the one uploaded, and extracts the dump.
func restore(path string, now time.Time, name, to string) int {
	r, done, code := startOps(path, now)
	if r == nil {
		return code
	}
	defer done()
	conf := r.conf
	ctx, d := context.Background(), r.dest()
	failed := func(what string, f *failure) int {
		fmt.Fprintf(os.Stderr, "archive: restore FAILED: %s: %s\n", what, f.cause)
		if f.detail != "" {
			fmt.Fprintf(os.Stderr, "  the step said: %s\n", f.detail)
		}
		if f.hint != "" {
			fmt.Fprintf(os.Stderr, "hint: %s %s\n", f.key, f.hint)
		}
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
	if name == "" {
		items, _ := planPrune(files, conf.NameFormat, now, retention{true, 1 << 30, 1}, "")
		if len(items) == 0 {
			fmt.Fprintf(os.Stderr, "archive: restore FAILED: no archive on %s (archive list shows the folder)\n", d.where())
			return exitFailure
		}
		name = items[0].Name
	}
	if !listed[name] {
		fmt.Fprintf(os.Stderr, "archive: restore FAILED: no archive named %q on %s (archive list shows them)\n", name, d.where())
		return exitFailure
	}

	// The expected sha256: this machine's record, else the one beside the archive; both must agree.
	want, from := readRecords(conf.StateDir)[name], "state_dir/"+recordsFile
	if listed[name+sidecarExt] {
		side := filepath.Join(r.work, "sidecar")
		if _, fail := r.do(ctx, d.call("restore", exitFailure, conf.DestTimeout, "get", name+sidecarExt, side), exitFailure); fail != nil {
			return failed("cannot download "+name+sidecarExt, fail)
		}
		data, _ := os.ReadFile(side)
		sum, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		switch {
		case !hexSum.MatchString(sum):
			fmt.Fprintf(os.Stderr, "archive: restore FAILED: %s on the server is not a sha256 line\n", name+sidecarExt)
			return exitFailure
		case want != "" && want != sum:
			fmt.Fprintf(os.Stderr, "archive: restore FAILED: the server's %s says %s but this machine recorded %s at upload: the server's copy was altered\n", name+sidecarExt, sum, want)
			return exitFailure
		case want == "":
			want, from = sum, name+sidecarExt+" on the server"
		}
	}
	if want == "" {
		fmt.Fprintf(os.Stderr, "archive: restore FAILED: no sha256 recorded for %s (neither in %s nor beside it on the server): its integrity cannot be proven\n", name, filepath.Join(conf.StateDir, recordsFile))
		return exitFailure
	}

	if err := os.MkdirAll(to, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "archive: restore FAILED: cannot create %q: %v\n", to, plainErr(err))
		return exitFailure
	}
	tgz := filepath.Join(r.work, name)
	if _, fail := r.do(ctx, d.call("restore", exitFailure, conf.TransferTimeout, "get", name, tgz), exitFailure); fail != nil {
		return failed("cannot download "+name, fail)
	}
	abs, _ := filepath.Abs(to)
	res, fail := r.do(ctx, step{check: "restore", script: "extract.sh", args: []string{tgz, want, abs}, timeout: conf.PackTimeout,
		causes: map[int]cause{
			20: {"the archive is not the one uploaded (its sha256 differs from the record)", "[destination] path", "do not trust this copy; restore an older archive and tell the server's administrator"},
			21: {"the archive is not a valid .tgz holding one file", "[destination] path", "restore an older archive"},
			22: {"the target folder already holds the dump's file name", "--to", "move the file away or choose another folder"},
			23: {"cannot write the dump in the target folder", "--to", "free space or fix permissions"},
		}}, exitFailure)
	if fail != nil {
		return failed(name, fail)
	}
	fmt.Printf("restored %s from %s\n  archive sha256 %s (matches %s)\n  dump    sha256 %s, %s\n", res.facts["path"], d.remote(name), want, from, res.facts["sha256"], human(atoi64(res.facts["size"])))
	return exitOK
}

// lastRun is state_dir/last-run.json: the last run for `archive status` and for monitoring.
type lastRun struct {
	RunID       string        `json:"run_id"`
	Version     string        `json:"version"`
	Conf        string        `json:"conf"`
	Date        string        `json:"date"`
	Started     time.Time     `json:"started"`
	Finished    time.Time     `json:"finished"`
	Outcome     string        `json:"outcome"`
	ExitCode    int           `json:"exit_code"`
	Archive     string        `json:"archive,omitempty"`
	SHA256      string        `json:"archive_sha256,omitempty"`
	Size        int64         `json:"archive_size,omitempty"`
	DumpSHA256  string        `json:"dump_sha256,omitempty"`
	DumpSize    int64         `json:"dump_size,omitempty"`
	ZipSize     int64         `json:"zip_size,omitempty"`
	Checks      []checkRecord `json:"checks"`
	Pruned      []string      `json:"pruned,omitempty"`
	PruneFailed []string      `json:"prune_failed,omitempty"`
	LastSuccess *time.Time    `json:"last_success,omitempty"`
}

type checkRecord struct {
	Check  string            `json:"check"`
	Status string            `json:"status"`
	Facts  map[string]string `json:"facts,omitempty"`
}

const lastRunFile = "last-run.json"

func readLastRun(dir string) (*lastRun, error) {
	data, err := os.ReadFile(filepath.Join(dir, lastRunFile))
	if err != nil {
		return nil, err
	}
	var lr lastRun
	if err := json.Unmarshal(data, &lr); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %v", filepath.Join(dir, lastRunFile), err)
	}
	return &lr, nil
}

// neededSpace is what the last run held at most in work_dir: the zip, the dump and the archive
// (the zip is removed only after extraction), with a tenth more for growth; 0 when unknown.
func neededSpace(dir string) int64 {
	lr, err := readLastRun(dir)
	if err != nil || lr.ZipSize == 0 {
		return 0
	}
	archive := lr.Size
	if archive == 0 {
		archive = lr.ZipSize
	}
	return (lr.ZipSize + lr.DumpSize + archive) * 11 / 10
}

// writeLastRun builds last-run.json from the run's log events. A failure to write it is logged,
// never fatal: it is a report, not the state.
func writeLastRun(conf *Conf, log *logger, code int, now, start time.Time) {
	lr := lastRun{RunID: log.runID, Version: version, Conf: conf.Path, Date: now.Format("2006-01-02"), Started: start,
		Finished: time.Now(), Outcome: outcomeOf(code), ExitCode: code}
	for _, e := range log.events {
		if e.check == "" || e.status == "START" {
			continue
		}
		facts := map[string]string{}
		for _, f := range e.facts {
			facts[f.k] = f.v
		}
		lr.Checks = append(lr.Checks, checkRecord{e.check, e.status, facts})
		switch {
		case e.check == "download" && e.status == "OK":
			lr.ZipSize = atoi64(facts["size"])
		case e.check == "zip-content" && e.status == "OK":
			lr.DumpSHA256, lr.DumpSize = facts["sha256"], atoi64(facts["size"])
		case e.check == "archive" && e.status == "OK":
			lr.Archive, lr.SHA256, lr.Size = facts["name"], facts["sha256"], atoi64(facts["size"])
		case e.check == "prune" && facts["deleted"] != "" && e.status == "INFO":
			lr.Pruned = append(lr.Pruned, facts["deleted"])
		case e.check == "prune" && facts["name"] != "":
			lr.PruneFailed = append(lr.PruneFailed, facts["name"])
		}
	}
	if code == exitOK {
		lr.LastSuccess = &lr.Finished
	} else if prev, err := readLastRun(conf.StateDir); err == nil {
		lr.LastSuccess = prev.LastSuccess
	}
	data, _ := json.MarshalIndent(lr, "", "  ")
	if err := writeFileAtomic(conf.StateDir, lastRunFile, append(data, '\n')); err != nil {
		log.warning("state", kv("cause", err.Error()), kv("key", "[archive] state_dir"))
	}
}

// status prints the last run for a person; its exit code is the last run's outcome (0, 3 or 1),
// so that a monitoring check can call it.
func status(path string, now time.Time) int {
	conf, ok := loadForOps(path)
	if !ok {
		return exitUsage
	}
	lr, err := readLastRun(conf.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("no run recorded yet in %s\n", conf.StateDir)
		return exitFailure
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "archive:", err)
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
		fmt.Printf("archive       %s, %s, sha256 %s\n", lr.Archive, human(lr.Size), short(lr.SHA256))
	}
	for _, c := range lr.Checks {
		if c.Status == "INFO" {
			continue
		}
		keys := make([]string, 0, len(c.Facts))
		for k := range c.Facts {
			if k != "rerun" && k != "hint" && c.Facts[k] != "" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var facts []string
		for _, k := range keys {
			facts = append(facts, k+"="+quoteValue(c.Facts[k]))
		}
		fmt.Printf("  %-8s %-12s %s\n", c.Status, c.Check, strings.Join(facts, " "))
	}
	return map[string]int{"SUCCESS": exitOK, "WARNING": exitWarning}[lr.Outcome] | boolInt(lr.Outcome == "FAILURE")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ping tells [monitor] ping_url; a ping that fails is logged, never fatal.
func ping(conf *Conf, log *logger, event string) {
	if conf.PingURL == "" {
		return
	}
	env := []string{"ARCHIVE_PING_URL=" + conf.PingURL, "ARCHIVE_TIMEOUT=" + secs(conf.PingTimeout)}
	if conf.PingCA != "" {
		env = append(env, "ARCHIVE_CA_FILE="+conf.PingCA)
	}
	rn := &runner{stepsDir: stepsDir(), tmpDir: os.TempDir()}
	res := rn.run(context.Background(), step{check: "monitor", script: "ping.sh", args: []string{event}, env: env, timeout: 3*conf.PingTimeout + 5*time.Second})
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
