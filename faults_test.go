package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The fault matrix: one table of scenarios, each breaking one thing with a real server and a real
// fault, run end to end with the built binary. For every scenario the suite asserts what the
// issue "nothing lost, no secret leaked" asks (see verdict): the exit code, a FAILED or WARNING
// line naming the check and its cause, the server's folder untouched, the state not advanced, the
// work folder clean, the failure mail sent, and no secret in the output, the log, last-run.json
// or the mail. A sampler reads every process's command line and environment during the whole
// matrix; no test password may appear there either. docs/reliability.md lists the scenarios.

// faultDay is the day every run is "today"; its archive is faultName (%Y%d%m).
const (
	faultDay  = "2026-11-28"
	faultName = "20262811.tgz"
)

// fault is one scenario of the matrix.
type fault struct {
	name  string        // the behaviour, as the subtest's name
	setup func(f *fenv) // breaks something before the run
	// run replaces the plain run of today, for scenarios that kill, signal or run twice; it
	// returns the exit code of the run the verdict is about, whose output is in f.output.
	run   func(f *fenv) int
	flags []string // more words for the plain run (archive --date faultDay FLAGS...)
	exit  int
	// check and cause: the FAILED (WARNING for exit 0 and 3) line the operator greps for: the
	// check it names and a regexp of its cause, which may go on to the key= and hint= fields.
	check, cause string
	lines        []string // more lines the output must hold (regexps)
	// changes: the run may change the server and the state (a success, a warning, a recovery).
	changes bool
	// mail: "" the failure (or warning) mail must arrive; "off" no [mail] in the conf; "none" a
	// [mail] section is there but no mail may arrive (the conf cannot be read).
	mail string
	then func(f *fenv)
}

// fenv is one scenario's world: the harness's env (HTTPS source, sshd, conf) and more.
type fenv struct {
	*env
	m        *faultMatrix
	dest     destServer // where the archives land (the sshd's folder unless use() chose another)
	mailTo   string
	home     string   // HOME for the runs: a fresh folder, to show nothing reads or writes there
	prefix   []string // command the binary runs under (unshare, setpriv)
	extra    []string // more environment for the runs
	bin      string   // a folder put first in PATH (tool wrappers), when set
	confFile string   // a conf the scenario wrote itself, instead of the one from e.conf
	asUser   int      // when not 0, the conf is given to this uid before each run
	confMode os.FileMode
	first    string // the output of the first run of a scenario that runs twice

	stateBefore  string
	serverBefore map[string]string
}

// faultMatrix is what the scenarios share: the mail server and the secrets to look for.
type faultMatrix struct {
	mp      *mailpit
	mu      sync.Mutex
	secrets map[string]string // secret -> where it comes from
	// inEnv: a secret that may stand in that variable of a process's environment (private to its
	// user, as the ping URL's), never on a command line.
	inEnv   map[string]string
	samples *procSampler
}

func TestFaultMatrixReportsEveryFailureWithItsCauseAndLosesOrLeaksNothing(t *testing.T) {
	// As another user than root, the scenarios that need root (a tmpfs, another user, a network
	// namespace, the FTPS and SMB servers) skip, each saying why (f.needRoot); the rest run.
	need(t, "sshd", "ssh-keygen", "mutt")
	// A short path: smbd's sockets live under it, and a socket path is at most 107 bytes.
	dir, err := os.MkdirTemp("", "faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &faultMatrix{secrets: map[string]string{}, inEnv: map[string]string{}}
	m.mp = newMailpit(t, dir, "starttls")
	m.secretFile(m.mp.env["SMTP_PASSWORD_FILE"], "the SMTP password")
	if os.Geteuid() == 0 {
		warmUpServers(t, dir)
	}
	m.samples = startSampler()

	// The group returns when its parallel scenarios have all ended (go test -parallel N: the
	// Makefile runs 6 at once; most of a scenario's time is waiting on servers and timeouts).
	t.Run("scenario", func(t *testing.T) {
		for i, tc := range faults() {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				m.play(t, i, tc)
			})
		}
	})

	// A control: a secret on a command line must be caught, or the sampler proves nothing.
	control := fmt.Sprintf("control-secret-%d", time.Now().UnixNano())
	exec.Command("bash", "-c", "sleep 0.3; :", control).Run() // "; :" keeps bash, and its arguments, alive
	seen := m.samples.stop()
	m.secrets[control] = "the control"
	var leaks []string
	caught := false
	for line := range seen.lines {
		for s, what := range m.secrets {
			if v, ok := m.inEnv[s]; ok && strings.HasPrefix(line, v+"=") {
				continue
			}
			if strings.Contains(line, s) {
				if s == control {
					caught = true
				} else {
					leaks = append(leaks, fmt.Sprintf("%s in %q", what, line))
				}
			}
		}
	}
	if !caught {
		t.Error("the process sampler missed the control secret on a command line: it proves nothing")
	}
	if len(leaks) > 0 {
		t.Errorf("secrets in a command line or environment:\n%s", strings.Join(leaks, "\n"))
	}
	t.Logf("the sampler read %d distinct command lines and environment entries (%d of curl, ssh, rsync, smbclient or mutt) in %d sweeps: %d secrets, none found",
		len(seen.lines), seen.tools, seen.sweeps, len(m.secrets)-1)
}

// needRoot skips a scenario that cannot run as another user, saying why; in CI it fails.
func (f *fenv) needRoot(why string) {
	f.t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		f.t.Fatalf("this scenario needs root (%s); CI runs as root", why)
	}
	f.t.Skipf("needs root: %s", why)
}

// warmUpServers starts each kind of server once, alone: their scripts create the test users,
// which must not happen twice at once.
func warmUpServers(t *testing.T, dir string) {
	t.Helper()
	for _, s := range []string{"sshd.sh", "vsftpd.sh", "smbd.sh"} {
		d := filepath.Join(dir, "warm-"+s)
		if out, err := exec.Command("bash", "testdata/servers/"+s, "start", d).CombinedOutput(); err != nil {
			t.Fatalf("cannot start %s: %v\n%s", s, err, out)
		}
		exec.Command("bash", "testdata/servers/"+s, "stop", d).Run()
	}
}

// play runs one scenario and gives its verdict.
func (m *faultMatrix) play(t *testing.T, i int, tc fault) {
	e := newEnv(t)
	f := &fenv{env: e, m: m, home: filepath.Join(e.dir, "home"), mailTo: fmt.Sprintf("fault-%02d@example.org", i)}
	os.Mkdir(f.home, 0o755)
	f.dest = destServer{conf: e.conf["destination"], dir: e.ssh.env["DEST"], owner: uidOf(t, e.ssh.env["DEST"])}
	m.secretKey(e.ssh.env["IDENTITY_FILE"])
	if tc.mail != "off" {
		f.mailConf("failure")
	}
	if tc.setup != nil {
		tc.setup(f)
	}
	f.stateBefore = f.state()
	f.serverBefore = snapshot(f.dest.dir)
	var code int
	if tc.run != nil {
		code = tc.run(f)
	} else {
		code = f.archive(append([]string{"--date", faultDay}, tc.flags...)...)
	}
	f.verdict(tc, code)
}

// verdict asserts what every scenario owes the operator.
func (f *fenv) verdict(tc fault, code int) {
	t := f.t
	t.Helper()
	if code != tc.exit {
		t.Errorf("exit code %d, want %d", code, tc.exit)
	}
	level := "FAILED"
	if tc.exit == exitOK || tc.exit == exitWarning {
		level = "WARNING"
	}
	if tc.check != "" {
		f.want(level + ` check=` + regexp.QuoteMeta(tc.check) + `(?: [a-z_]+=\S+)* cause="?` + tc.cause)
	} else if tc.exit == exitOK {
		f.none(`FAILED|WARNING`)
	}
	f.want(`RESULT ` + outcomeOf(tc.exit) + ` exit=` + strconv.Itoa(tc.exit) + ` `)
	for _, l := range tc.lines {
		f.want(l)
	}
	f.none(`panic|goroutine \d`)
	if !tc.changes {
		if got := f.state(); got != f.stateBefore {
			t.Errorf("the state moved on after a failed run:\nbefore: %q\nafter:  %q", f.stateBefore, got)
		}
		if got := snapshot(f.dest.dir); !sameFiles(got, f.serverBefore) {
			t.Errorf("the server's folder changed after a failed run:\nbefore: %v\nafter:  %v", f.serverBefore, got)
		}
	}
	for name := range snapshot(f.dest.dir) {
		// A link planted there is not ours: it is left alone, never followed.
		if st, err := os.Lstat(filepath.Join(f.dest.dir, name)); err == nil && st.Mode().IsRegular() && strings.HasSuffix(name, ".part") {
			t.Errorf("a temporary file is left on the server: %s", name)
		}
	}
	if entries, _ := os.ReadDir(f.local("archive", "work_dir", "work")); len(entries) > 0 {
		t.Errorf("work_dir not clean: %v", entries)
	}
	f.noSecrets("the output", f.output+f.first)
	log, _ := os.ReadFile(f.local("log", "file", "archive.log"))
	f.noSecrets("the log", string(log))
	lastRun, _ := os.ReadFile(filepath.Join(f.local("archive", "state_dir", "state"), lastRunFile))
	f.noSecrets("last-run.json", string(lastRun))
	f.mailVerdict(tc)
	if tc.then != nil && !t.Failed() {
		tc.then(f)
	}
}

// mailVerdict: a failure or a warning mails its check and cause; nothing is mailed otherwise.
func (f *fenv) mailVerdict(tc fault) {
	t := f.t
	t.Helper()
	if tc.mail == "off" {
		return
	}
	msgs := f.mails(tc.mail == "" && tc.exit != exitOK)
	for _, msg := range msgs {
		f.noSecrets("the mail", msg.Subject+"\n"+msg.Text+"\n"+msg.attachment)
	}
	switch {
	case tc.mail == "none" || (tc.exit == exitOK && tc.run == nil && f.conf["mail"]["send"] == "failure"):
		if len(msgs) > 0 {
			t.Errorf("%d mail(s) sent, want none: %q", len(msgs), msgs[0].Subject)
		}
	case tc.exit != exitOK:
		want := "[archive] FAILED at " + tc.check + " on "
		if tc.exit == exitWarning {
			want = "[archive] WARNING at " + tc.check + " on "
		}
		for _, msg := range msgs {
			if strings.HasPrefix(msg.Subject, want) {
				if !strings.Contains(msg.Text, "archive: "+outcomeOf(tc.exit)) || !strings.Contains(msg.attachment, strings.Fields(want)[1]+" check="+tc.check) {
					t.Errorf("the mail %q lacks the outcome or the run's log:\n%s", msg.Subject, msg.Text)
				}
				return
			}
		}
		var subjects []string
		for _, msg := range msgs {
			subjects = append(subjects, msg.Subject)
		}
		t.Errorf("no mail %q... to %s; got %q", want, f.mailTo, subjects)
	}
}

// faultMail is one message that reached the test mail server, with its attachment's text.
type faultMail struct {
	Subject    string
	Text       string
	attachment string
}

// mails returns the messages sent to this scenario's address; wait: one is expected, give the
// server a moment to store it.
func (f *fenv) mails(wait bool) []faultMail {
	f.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var found struct{ Messages []struct{ ID string } }
		f.m.mp.get(f.t, "/api/v1/search?query="+url.QueryEscape("to:"+f.mailTo), &found)
		var out []faultMail
		for _, s := range found.Messages {
			var full message
			f.m.mp.get(f.t, "/api/v1/message/"+s.ID, &full)
			to := false
			for _, a := range full.To {
				to = to || a.Address == f.mailTo
			}
			if !to {
				continue
			}
			msg := faultMail{Subject: full.Subject, Text: full.Text}
			for _, a := range full.Attachments {
				msg.attachment += string(f.m.mp.get(f.t, fmt.Sprintf("/api/v1/message/%s/part/%s", full.ID, a.PartID), nil))
			}
			out = append(out, msg)
		}
		if len(out) > 0 || !wait || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mailConf sends the report of this scenario to its own address on the shared mail server.
func (f *fenv) mailConf(send string) {
	mp := f.m.mp.env
	f.conf["mail"] = map[string]string{"send": send, "to": f.mailTo, "from": "archive@db01.example.org", "transport": "smtp",
		"smtp_host": "127.0.0.1", "smtp_port": mp["SMTP_PORT"], "smtp_user": mp["SMTP_USER"], "smtp_password_file": mp["SMTP_PASSWORD_FILE"],
		"ca_file": mp["CA_FILE"], "timeout": "20"}
}

// local is a path of the conf as archive resolves it: relative to the conf's folder.
func (f *fenv) local(section, key, def string) string {
	v := f.conf[section][key]
	if v == "" {
		v = def
	}
	if filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(f.dir, v)
}

// state is the state file's content, "" when there is none.
func (f *fenv) state() string {
	data, _ := os.ReadFile(filepath.Join(f.local("archive", "state_dir", "state"), stateFile))
	return string(data)
}

func (f *fenv) want(pattern string) {
	f.t.Helper()
	if !regexp.MustCompile(`(?m)` + pattern).MatchString(f.output) {
		f.t.Errorf("no line matches %q", pattern)
	}
}

func (f *fenv) none(pattern string) {
	f.t.Helper()
	if l := regexp.MustCompile(`(?m)^.*(` + pattern + `).*$`).FindString(f.output); l != "" {
		f.t.Errorf("a line matches %q, none should: %s", pattern, l)
	}
}

// archive runs the binary as of today's run and returns its exit code; its output is in f.output.
func (f *fenv) archive(args ...string) int {
	f.t.Helper()
	return f.start(args...).wait()
}

// proc is a run of the binary in progress.
type proc struct {
	f    *fenv
	cmd  *exec.Cmd
	out  *lockedBuffer
	code int
	done chan struct{}
}

func (f *fenv) start(args ...string) *proc {
	f.t.Helper()
	conf := f.confFile
	if conf == "" {
		conf = f.writeConf()
	}
	if f.confMode != 0 {
		os.Chmod(conf, f.confMode)
	}
	if f.asUser != 0 {
		os.Chown(conf, f.asUser, -1)
	}
	argv := append(append([]string(nil), f.prefix...), filepath.Join(binDir, "archive"), "-c", conf)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = f.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{f: f, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("cannot start archive: %v", err)
	}
	f.t.Cleanup(func() { // a scenario that failed halfway leaves no run behind
		select {
		case <-p.done:
		default:
			killTree(cmd.Process.Pid)
			<-p.done
		}
	})
	go func() {
		err := cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	return p
}

// wait waits for the run to end, keeps its output in f.output and returns its exit code.
func (p *proc) wait() int {
	p.f.t.Helper()
	select {
	case <-p.done:
	case <-time.After(150 * time.Second):
		killTree(p.cmd.Process.Pid)
		<-p.done
		p.f.t.Errorf("archive did not end within 150 s")
	}
	p.f.output = p.out.String()
	p.f.t.Logf("archive %s -> exit %d:\n%s", strings.Join(p.cmd.Args[1:], " "), p.code, p.f.output)
	return p.code
}

func (f *fenv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "ARCHIVE_") {
			env = append(env, kv)
		}
	}
	path := os.Getenv("PATH")
	if f.bin != "" {
		path = f.bin + ":" + path
	}
	return append(append(env, "HOME="+f.home, "PATH="+path), f.extra...)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds; the scenario fails when it does not within 30 s.
func (f *fenv) waitFor(what string, cond func() bool) {
	f.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("waited 30 s for %s", what)
		}
	}
}

// processTree is pid and every process below it, read from /proc.
func processTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// killTree is kill -9 of a run and of everything it started, steps' process groups included:
// what the OOM killer or a stopped container does. Killing the binary alone leaves its steps.
func killTree(pid int) {
	own := syscall.Getpgrp()
	tree := processTree(pid)
	for _, p := range tree {
		if g, err := syscall.Getpgid(p); err == nil && g != own {
			syscall.Kill(-g, syscall.SIGKILL)
		}
		syscall.Kill(p, syscall.SIGKILL)
	}
	// A killed process lets go of its files (the run's lock, which its steps share) only once
	// it is gone: wait for that, as an operator restarting a dead run would.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !slices.ContainsFunc(tree[1:], alive) {
			return
		}
	}
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// pauseAt puts a wrapper for tool first in PATH: a call whose arguments match the bash pattern
// leaves a marker file and sleeps instead of running; every other call runs the real tool.
// It returns the marker's path.
func (f *fenv) pauseAt(tool, pattern string) string {
	f.t.Helper()
	return f.pauseIf(tool, "pattern="+shellQuote(pattern)+`; [[ "$*" == $pattern ]]`)
}

// pauseIf is pauseAt for any bash condition on the call's arguments.
func (f *fenv) pauseIf(tool, condition string) string {
	f.t.Helper()
	real, err := exec.LookPath(tool)
	if err != nil {
		f.t.Fatal(err)
	}
	if f.bin == "" {
		f.bin = filepath.Join(f.dir, "bin")
		os.Mkdir(f.bin, 0o755)
	}
	marker := filepath.Join(f.dir, "paused-"+tool)
	script := fmt.Sprintf("#!/bin/bash\nif %s; then : >%s; exec sleep 600; fi\nexec %s \"$@\"\n", condition, shellQuote(marker), shellQuote(real))
	if err := os.WriteFile(filepath.Join(f.bin, tool), []byte(script), 0o755); err != nil {
		f.t.Fatal(err)
	}
	return marker
}

// record puts a wrapper for tool first in PATH that appends the output of a shell command to a
// file, then runs the real tool: a look inside a run while it happens.
func (f *fenv) record(tool, command string) string {
	f.t.Helper()
	real, err := exec.LookPath(tool)
	if err != nil {
		f.t.Fatal(err)
	}
	if f.bin == "" {
		f.bin = filepath.Join(f.dir, "bin")
		os.Mkdir(f.bin, 0o755)
	}
	out := filepath.Join(f.dir, "recorded-"+tool)
	script := fmt.Sprintf("#!/bin/bash\n{ %s; } >>%s 2>&1\nexec %s \"$@\"\n", command, shellQuote(out), shellQuote(real))
	if err := os.WriteFile(filepath.Join(f.bin, tool), []byte(script), 0o755); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// snapshot is every file and folder under dir with the sha256 of its content.
func snapshot(dir string) map[string]string {
	files := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			files[rel+"/"] = "folder"
			return nil
		}
		data, _ := os.ReadFile(p)
		files[rel] = sha(string(data))
		return nil
	})
	return files
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// names lists the server's folder, sorted, hidden files included.
func (f *fenv) names() string {
	var names []string
	for n := range snapshot(f.dest.dir) {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func (f *fenv) wantNames(want string) {
	f.t.Helper()
	if got := f.names(); got != want {
		f.t.Errorf("the server holds %s, want %s", got, want)
	}
}

// wantArchive asserts the server holds name, whose dump is body.
func (f *fenv) wantArchive(name, body string) {
	f.t.Helper()
	p := filepath.Join(f.dest.dir, name)
	if !exists(p) {
		f.t.Errorf("the server lacks %s (it holds %s)", name, f.names())
		return
	}
	if _, got := sqlInArchive(f.t, p); got != body {
		f.t.Errorf("%s does not hold the published dump", name)
	}
}

// writeState stands for the runs before this one.
func (f *fenv) writeState(s state) {
	f.t.Helper()
	dir := filepath.Join(f.dir, "state")
	os.MkdirAll(dir, 0o700)
	if err := writeState(dir, s); err != nil {
		f.t.Fatal(err)
	}
}

// wantPlanted: the file planted as name still holds body, a regular file.
func (f *fenv) wantPlanted(name, body string) {
	f.t.Helper()
	p := filepath.Join(f.dest.dir, name)
	if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
		f.t.Errorf("%s is no longer the regular file planted: %v", name, err)
	} else if got, _ := os.ReadFile(p); string(got) != body {
		f.t.Errorf("%s was overwritten: it holds %d bytes, not the %d planted", name, len(got), len(body))
	}
}

// plant puts a file on the server as its user made it.
func (f *fenv) plant(name, body string) {
	p := filepath.Join(f.dest.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
	os.Chown(p, f.dest.owner, -1)
}

// use sends the archives to a fresh server of that protocol instead of the sshd.
func (f *fenv) use(proto string) {
	f.t.Helper()
	if proto != "nfs" {
		f.needRoot("the " + proto + " server's test users")
	}
	f.dest = startDest(f.t, f.env, proto)
	f.conf["destination"] = f.dest.conf
	if pw := f.dest.conf["password_file"]; pw != "" {
		f.m.secretFile(pw, proto+" password")
	}
}

// mountSmall puts a tmpfs of that size over dir, owned by uid: a disk that fills up.
func (f *fenv) mountSmall(dir, size string, uid int) {
	f.t.Helper()
	f.needRoot("a small tmpfs mounted over " + filepath.Base(dir))
	need(f.t, "mount", "umount")
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		f.t.Fatalf("cannot mount a tmpfs on %s: %v\n%s", dir, err, out)
	}
	f.t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	os.Chown(dir, uid, -1)
}

// faultSource is an HTTPS server that answers as the scenario says, request by request; a
// handler that returns false lets the zip be served. It shares the test certificate of the
// harness's source, so [source] ca_file stays the same.
type faultSource struct {
	srv  *httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	seen []string
}

func (f *fenv) serveSource(h func(w http.ResponseWriter, r *http.Request, n int) bool) *faultSource {
	fs := &faultSource{}
	fs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(fs.hits.Add(1))
		fs.mu.Lock()
		fs.seen = append(fs.seen, r.Method+" "+r.RequestURI)
		fs.mu.Unlock()
		if h(w, r, n) {
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		http.ServeContent(w, r, "dump.zip", time.Now(), bytes.NewReader(f.src.zip.Load().([]byte)))
	}))
	fs.srv.StartTLS()
	f.t.Cleanup(fs.srv.Close)
	f.conf["source"]["url"] = fs.srv.URL + "/exports/dump.zip"
	return fs
}

func (fs *faultSource) requests() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.seen...)
}

// proxy stands between archive and a server: it passes bytes through, cuts the first connection
// that carries more than cutAfter bytes upstream (once), or slows every upload down.
type proxy struct {
	ln       net.Listener
	target   string
	cutAfter int64
	armed    atomic.Bool
	slow     atomic.Bool
	cuts     atomic.Int32
}

func (f *fenv) newProxy(target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, cutAfter: 512 << 10}
	f.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *proxy) port() string { return strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port) }

func (p *proxy) pipe(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		io.Copy(client, server)
		client.(*net.TCPConn).CloseWrite()
	}()
	buf := make([]byte, 16<<10)
	var sent int64
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if p.slow.Load() && sent > 64<<10 {
				time.Sleep(25 * time.Millisecond)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
			if sent > p.cutAfter && p.armed.CompareAndSwap(true, false) {
				p.cuts.Add(1)
				client.(*net.TCPConn).SetLinger(0)
				server.(*net.TCPConn).SetLinger(0)
				return
			}
		}
		if err != nil {
			server.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// viaProxy sends the destination's traffic through a proxy, for sftp, webdav or smb.
func (f *fenv) viaProxy() *proxy {
	f.t.Helper()
	d := f.conf["destination"]
	switch d["protocol"] {
	case "sftp":
		p := f.newProxy("127.0.0.1:" + d["port"])
		key, err := os.ReadFile(filepath.Join(f.ssh.dir, "host_key.pub"))
		if err != nil {
			f.t.Fatal(err)
		}
		fields := strings.Fields(string(key))
		kh := filepath.Join(f.dir, "known_hosts_proxy")
		os.WriteFile(kh, []byte("[127.0.0.1]:"+p.port()+" "+fields[0]+" "+fields[1]+"\n"), 0o644)
		d["port"], d["known_hosts"] = p.port(), kh
		return p
	case "smb":
		p := f.newProxy("127.0.0.1:" + d["port"])
		d["port"] = p.port()
		return p
	case "webdav":
		u, _ := url.Parse(d["url"])
		p := f.newProxy(u.Host)
		u.Host = "127.0.0.1:" + p.port()
		d["url"] = u.String()
		return p
	}
	f.t.Fatalf("no proxy for %s", d["protocol"])
	return nil
}

// noise is a dump of about n bytes of random hex: it compresses to about half, so that the
// sizes of the zip and the archive are known in advance.
func noise(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("CREATE TABLE blobs (id INT, data TEXT);\n")
	var raw [32]byte
	for i := 0; b.Len() < n; i++ {
		for j := range raw {
			raw[j] = byte(r.Uint32())
		}
		fmt.Fprintf(&b, "INSERT INTO blobs VALUES (%d, '%s');\n", i, hex.EncodeToString(raw[:]))
	}
	return b.String()
}

// orderedZip builds a zip whose members keep their order and may repeat a name; store: no
// compression.
func orderedZip(t *testing.T, store bool, members ...[2]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m[0], Method: zip.Deflate, Modified: time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)}
		if store {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, m[1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Secrets: every password and key the scenarios use, looked for everywhere.

func (m *faultMatrix) secretFile(path, what string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if s := strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]); len(s) >= 8 {
		m.mu.Lock()
		m.secrets[s] = what + " (" + path + ")"
		if len(s) > 16 { // its start alone, as a quoted log value would escape its quotes
			m.secrets[s[:16]] = what + " (its first 16 characters, " + path + ")"
		}
		m.mu.Unlock()
	}
}

// secretKey remembers a line of an SSH private key's body.
func (m *faultMatrix) secretKey(path string) {
	data, _ := os.ReadFile(path)
	lines := strings.Split(string(data), "\n")
	if len(lines) > 2 {
		m.mu.Lock()
		m.secrets[lines[2]] = "an SSH private key (" + path + ")"
		m.mu.Unlock()
	}
}

func (f *fenv) noSecrets(where, text string) {
	f.t.Helper()
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	for s, what := range f.m.secrets {
		if strings.Contains(text, s) {
			f.t.Errorf("%s is in %s", what, where)
		}
	}
}

// procSampler reads the command line and environment of every process, every 25 ms.
type procSampler struct {
	mu     sync.Mutex
	lines  map[string]bool
	tools  int
	sweeps int
	quit   chan struct{}
	done   chan struct{}
}

func startSampler() *procSampler {
	s := &procSampler{lines: map[string]bool{}, quit: make(chan struct{}), done: make(chan struct{})}
	self := strconv.Itoa(os.Getpid())
	tool := regexp.MustCompile(`^(\S*/)?(curl|ssh|rsync|smbclient|mutt) `)
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.quit:
				return
			case <-time.After(25 * time.Millisecond):
			}
			entries, _ := os.ReadDir("/proc")
			s.mu.Lock()
			s.sweeps++
			for _, e := range entries {
				if e.Name() == self || e.Name()[0] < '0' || e.Name()[0] > '9' {
					continue
				}
				if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && len(b) > 0 {
					line := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
					if !s.lines[line] && tool.MatchString(line) {
						s.tools++
					}
					s.lines[line] = true
				}
				if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil {
					for _, kv := range bytes.Split(b, []byte{0}) {
						s.lines[string(kv)] = true
					}
				}
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *procSampler) stop() *procSampler {
	close(s.quit)
	<-s.done
	return s
}

// asNobody runs archive as an unprivileged user (nobody): root reads and writes everything,
// so a real "permission denied" needs someone else. The folders a run needs become nobody's.
func (f *fenv) asNobody() {
	f.needRoot("archive run as the user nobody")
	need(f.t, "setpriv")
	f.t.Helper()
	const nobody = 65534
	f.prefix = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	f.asUser = nobody
	own := filepath.Join(f.dir, "nobody")
	for _, d := range []string{own, filepath.Join(own, "state"), filepath.Join(own, "work")} {
		os.MkdirAll(d, 0o700)
		os.Chown(d, nobody, nobody)
	}
	os.Chown(f.home, nobody, nobody)
	f.conf["archive"]["state_dir"] = filepath.Join(own, "state")
	f.conf["archive"]["work_dir"] = filepath.Join(own, "work")
	f.conf["log"]["file"] = filepath.Join(own, "archive.log")
	for _, k := range [][2]string{{"destination", "identity_file"}, {"mail", "smtp_password_file"}, {"mail", "ca_file"}} {
		if src := f.conf[k[0]][k[1]]; src != "" {
			data, _ := os.ReadFile(src)
			dst := filepath.Join(own, filepath.Base(src))
			os.WriteFile(dst, data, 0o600)
			os.Chown(dst, nobody, nobody)
			f.conf[k[0]][k[1]] = dst
		}
	}
}

func TestReliabilityDocListsEveryScenarioOfTheFaultMatrix(t *testing.T) {
	doc, err := os.ReadFile("docs/reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tc := range faults() {
		if names[tc.name] {
			t.Errorf("two scenarios are named %q", tc.name)
		}
		names[tc.name] = true
		if !strings.Contains(string(doc), "| "+tc.name+" |") {
			t.Errorf("docs/reliability.md does not list %q", tc.name)
		}
	}
	if n := len(names); n < 30 {
		t.Errorf("the matrix has %d scenarios, the issue asks for at least 30", n)
	}
}

// faults is the matrix; docs/reliability.md lists the same names with what each proves.
func faults() []fault {
	const cdump = `the dump is smaller than min_size: it looks empty or truncated"`
	// inj holds what a shell would run, in a value that must stay data: $HOME is the run's
	// own fresh folder, so a command that ran leaves HOME-i1... beside it.
	inj := "$(touch $HOME-i1) `touch $HOME-i2` ; touch $HOME-i3 'q\" -x"
	noInjection := func(f *fenv) {
		f.t.Helper()
		if found, _ := filepath.Glob(f.home + "-i*"); len(found) > 0 {
			f.t.Errorf("a value was run as a command: %v", found)
		}
	}
	recovered := []string{`INFO check=cleanup removed=\S+/run-[0-9a-f]+ reason="left by an interrupted run"`, `OK check=transfer `}
	archived := func(f *fenv) {
		f.t.Helper()
		f.wantArchive(faultName, dump("first"))
		if !strings.Contains(f.state(), "sha256="+sha(dump("first"))) {
			f.t.Errorf("the state did not move on to the archived dump: %q", f.state())
		}
	}
	return []fault{
		// Source.
		tokenInTheURL(false), tokenInTheURL(true),
		{name: "a source refusing HEAD (403, like a presigned link) passes url and download: HEAD is never sent", changes: true,
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if r.Method == http.MethodHead {
						http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
						return true
					}
					return false
				})
			},
			exit: exitOK, lines: []string{`OK check=url status=20[06] size=\d+ `, `OK check=download `}, then: archived},
		{name: "a source whose HEAD hangs passes url at once", changes: true,
			setup: func(f *fenv) {
				f.conf["source"]["timeout"] = "5"
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if r.Method == http.MethodHead {
						time.Sleep(20 * time.Second)
						return true
					}
					return false
				})
			},
			exit: exitOK, lines: []string{`OK check=url status=20[06] `}, then: archived},
		{name: "a redirect to another host is followed and logged with the final URL", changes: true,
			setup: func(f *fenv) {
				// The final server on ::1, another host name for the same test certificate.
				final := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.ServeContent(w, r, "dump.zip", time.Now(), bytes.NewReader(f.src.zip.Load().([]byte)))
				}))
				ln, err := net.Listen("tcp", "[::1]:0")
				if err != nil {
					f.t.Skipf("no IPv6 loopback: %v", err)
				}
				final.Listener.Close()
				final.Listener = ln
				final.StartTLS()
				f.t.Cleanup(final.Close)
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					http.Redirect(w, r, final.URL+"/signed/dump.zip?X-Amz-Signature=abc", http.StatusFound)
					return true
				})
			},
			exit: exitOK, lines: []string{`OK check=url status=20[06] .*final_url="?https://\[::1\]:\d+/signed/dump.zip.* note="redirected to another host: \[::1\]`}, then: archived},
		{name: "a redirect to http:// is refused with its cause in words",
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					http.Redirect(w, r, "http://127.0.0.1:1/dump.zip", http.StatusFound)
					return true
				})
			},
			exit: exitURL, check: "url", cause: `the source redirected to an address that is not https:// \(refused\)" detail=".*redirected to http://127.0.0.1:1/dump.zip.* key="\[source\] url"`},
		{name: "source host name that does not resolve fails url naming DNS", mail: "off",
			setup: func(f *fenv) {
				f.conf["source"]["url"] = "https://dump.invalid/exports/dump.zip"
				f.needRoot("a network namespace (unshare -n)")
				f.prefix = []string{"unshare", "-n", "--"} // a network namespace: no DNS server answers
			},
			exit: exitURL, check: "url", cause: `the source host name does not resolve \(DNS\)" detail=".*dump.invalid.* key="\[source\] url"`},
		{name: "source refusing connections fails url",
			setup: func(f *fenv) { f.conf["source"]["url"] = "https://127.0.0.1:" + closedPort(f.t) + "/dump.zip" },
			exit:  exitURL, check: "url", cause: `cannot connect to the source server \(refused or unreachable\)" detail=".*Failed to connect to 127.0.0.1`},
		{name: "source certificate from an unknown CA fails url naming ca_file",
			setup: func(f *fenv) { delete(f.conf["source"], "ca_file") },
			exit:  exitURL, check: "url", cause: `the source's TLS certificate is not trusted .*detail=".*certificate.* key="\[source\] ca_file"`},
		{name: "source certificate for another host name fails url",
			setup: func(f *fenv) {
				f.conf["source"]["url"] = strings.Replace(f.src.url(), "127.0.0.1", "localhost", 1)
			},
			exit: exitURL, check: "url", cause: `the source's TLS certificate is not trusted \(unknown CA or wrong host name\)" detail=".*subject name`},
		{name: "source answering 403 fails url with the status",
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool { http.Error(w, "forbidden", 403); return true })
			},
			exit: exitURL, check: "url", cause: `the source answered HTTP 403" .*key="\[source\] url" hint=".*401/403: access refused`},
		{name: "source answering 404 fails url with the status",
			setup: func(f *fenv) { f.src.mode.Store("404") },
			exit:  exitURL, check: "url", cause: `the source answered HTTP 404"`},
		{name: "source answering 500 to every download fails download after the retries",
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if r.Method == http.MethodGet && r.Header.Get("Range") == "" { // the url check asks for a range
						http.Error(w, "busy", 500)
						return true
					}
					return false
				})
			},
			exit: exitDownload, check: "download", cause: `the source answered HTTP 500" detail="fetch: attempt 1 failed \(HTTP 500\), retrying in 0s \| fetch: HTTP 500: `},
		{name: "source answering 500 then 200 to the download is retried and says so", changes: true,
			setup: func(f *fenv) { f.src.mode.Store("500-then-ok") },
			exit:  exitOK, lines: []string{`OK check=download size=\d+ attempts=2 retried_after="HTTP 500"`}, then: archived},
		{name: "source answering 500 then 200 to the first request is retried and says so", changes: true,
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if n == 1 {
						http.Error(w, "busy", 503)
						return true
					}
					return false
				})
			},
			exit: exitOK, lines: []string{`OK check=url .*retried_after="HTTP 503"`}, then: archived},
		{name: "source that stalls fails download as a timeout naming [source] timeout",
			setup: func(f *fenv) {
				f.src.mode.Store("stall")
				f.conf["source"]["timeout"], f.conf["source"]["retries"] = "2", "0"
			},
			exit: exitDownload, check: "download", cause: `the source did not answer in time" detail=".*timed out after 2s.* key="\[source\] timeout"`},
		{name: "download cut short fails download after the retries and keeps nothing",
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if r.Method != http.MethodGet {
						return false
					}
					body := f.src.zip.Load().([]byte)
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.WriteHeader(200)
					w.Write(body[:len(body)/2])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler) // the connection drops
				})
				f.zip(map[string]string{"dump.sql": noise(1, 400<<10)})
			},
			exit: exitDownload, check: "download", cause: `the download was cut short" detail=".*attempt 1 failed \(the download was cut short`},
		{name: "HTML error page served with 200 fails zip-content as not a zip",
			setup: func(f *fenv) { f.src.mode.Store("html") },
			exit:  exitZipContent, check: "zip-content", cause: `the downloaded file is not a zip" detail=".*the server sent a web page`},
		{name: "source URL holding brackets and braces is fetched as written", changes: true,
			setup: func(f *fenv) {
				s := f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool { return false })
				f.conf["source"]["url"] = s.srv.URL + "/exports/dump[1]{a,b}.zip"
				f.t.Cleanup(func() {
					for _, r := range s.requests() {
						if !strings.HasSuffix(r, " /exports/dump[1]{a,b}.zip") {
							f.t.Errorf("the source was asked for %q, not the URL of the conf", r)
						}
					}
				})
			},
			exit: exitOK, then: archived},

		// Zip.
		{name: "corrupt zip fails zip-content",
			setup: func(f *fenv) { f.src.zip.Store([]byte("PK\x03\x04 this is no zip at all, only its first four bytes")) },
			exit:  exitZipContent, check: "zip-content", cause: `the zip is corrupt or truncated" detail=".*central directory`},
		{name: "truncated zip fails zip-content",
			setup: func(f *fenv) {
				z := makeZip(f.t, map[string]string{"dump.sql": noise(2, 200<<10)})
				f.src.zip.Store(z[:len(z)/2])
			},
			exit: exitZipContent, check: "zip-content", cause: `the zip is corrupt or truncated"`},
		{name: "zip without the expected member fails zip-content naming expected_file",
			setup: func(f *fenv) { f.zip(map[string]string{"other.sql": dump("x")}) },
			exit:  exitZipContent, check: "zip-content", cause: `the zip does not hold the expected file" .*key="\[source\] expected_file"`},
		{name: "member only in a sub-folder or in another case fails zip-content and is named",
			setup: func(f *fenv) { f.zip(map[string]string{"backup/dump.sql": dump("x"), "DUMP.SQL": dump("y")}) },
			exit:  exitZipContent, check: "zip-content", cause: `the zip does not hold the expected file" detail=".*at its root \(found: backup/dump.sql\)`},
		{name: "two members named like the dump fail zip-content as ambiguous",
			setup: func(f *fenv) {
				f.src.zip.Store(orderedZip(f.t, false, [2]string{"dump.sql", dump("a")}, [2]string{"dump.sql", dump("b")}))
			},
			exit: exitZipContent, check: "zip-content", cause: `the zip holds the expected name more than once" detail=".*2 members named`},
		{name: "the root member is archived when a sub-folder holds another of that name", changes: true,
			setup: func(f *fenv) { f.zip(map[string]string{"old/dump.sql": dump("old"), "dump.sql": dump("first")}) },
			exit:  exitOK, then: archived},
		{name: "member names with ../ or absolute paths write nothing outside the work folder", changes: true,
			setup: func(f *fenv) {
				abs := filepath.Join(os.TempDir(), fmt.Sprintf("archive-fault-%d", time.Now().UnixNano()))
				f.src.zip.Store(orderedZip(f.t, false, [2]string{"../escape.sql", "x"}, [2]string{"../../escape.sql", "x"},
					[2]string{abs + "/abs.sql", "x"}, [2]string{"dump.sql", dump("first")}, [2]string{"../dump.sql", "x"}))
				f.t.Cleanup(func() {
					for _, p := range []string{abs, filepath.Join(f.dir, "escape.sql"), filepath.Join(f.dir, "work", "escape.sql"), "/escape.sql"} {
						if exists(p) {
							f.t.Errorf("a zip member was written outside the work folder: %s", p)
						}
					}
				})
			},
			exit: exitOK, then: archived},
		{name: "a dump named ../dump.sql is not taken and not written",
			setup: func(f *fenv) { f.src.zip.Store(orderedZip(f.t, false, [2]string{"../dump.sql", dump("x")})) },
			exit:  exitZipContent, check: "zip-content", cause: `the zip does not hold the expected file" detail=".*\(found: \.\./dump.sql\)`,
			then: func(f *fenv) {
				for _, p := range []string{filepath.Join(f.dir, "dump.sql"), filepath.Join(f.dir, "work", "dump.sql")} {
					if exists(p) {
						f.t.Errorf("%s was written", p)
					}
				}
			}},
		{name: "zip bomb stops at max_size before the work disk fills",
			setup: func(f *fenv) {
				f.mountSmall(filepath.Join(f.dir, "work"), "4m", 0)
				f.conf["source"]["max_size"] = "1M"
				f.zip(map[string]string{"dump.sql": strings.Repeat("0", 48<<20)})
			},
			exit: exitZipContent, check: "zip-content", cause: `the dump expands past max_size \(zip bomb guard\)" .*key="\[source\] max_size"`},
		{name: "empty dump fails zip-content as below min_size",
			setup: func(f *fenv) { f.zip(map[string]string{"dump.sql": ""}) },
			exit:  exitZipContent, check: "zip-content", cause: cdump + ` detail=".*the member is 0 bytes, below min_size \(1 bytes\)`},
		{name: "truncated dump below min_size fails zip-content",
			setup: func(f *fenv) { f.conf["source"]["min_size"] = "200K" },
			exit:  exitZipContent, check: "zip-content", cause: cdump + ` detail=".*below min_size \(204800 bytes\).* key="\[source\] min_size"`},

		// Local.
		{name: "work dir on a full disk fails download naming work_dir",
			setup: func(f *fenv) {
				f.mountSmall(filepath.Join(f.dir, "work"), "64k", 0)
				f.zip(map[string]string{"dump.sql": noise(3, 400<<10)})
			},
			exit: exitDownload, check: "download", cause: `cannot write the zip in the work folder \(disk full or permission\)" .*key="\[archive\] work_dir"`},
		{name: "work dir filling up during extraction fails zip-content naming work_dir",
			setup: func(f *fenv) {
				f.mountSmall(filepath.Join(f.dir, "work"), "256k", 0)
				f.conf["archive"]["compressor"] = "pigz" // auto never writes the dump to disk
				f.zip(map[string]string{"dump.sql": strings.Repeat("INSERT INTO t VALUES (1, 'same');\n", 60000)})
			},
			exit: exitZipContent, check: "zip-content", cause: `cannot write the dump in the work folder \(disk full or permission\)" .*key="\[archive\] work_dir"`},
		{name: "work dir filling up while the archive is packed fails archive naming work_dir and the disk",
			setup: func(f *fenv) {
				f.mountSmall(filepath.Join(f.dir, "work"), "1m", 0)
				f.conf["archive"]["compressor"] = "gzip"
				// The moment gzip starts, something else takes the rest of the disk.
				f.record("gzip", `[[ "$*" == -c* ]] && head -c 2M /dev/zero >"$PWD/filler"`)
			},
			exit: exitArchive, check: "archive", cause: `cannot write the archive in the work folder \(disk full or permission\)" detail=".*no space left on device" key="\[archive\] work_dir"`},
		{name: "a member whose deflate data holds two streams fails zip-content, and history = no keeps the last good archive",
			setup: func(f *fenv) {
				f.conf["retention"]["history"] = "no"
				f.plant("20262711.tgz", "the last good archive")
				body := dump("first")
				var raw bytes.Buffer
				for _, part := range []string{body[:len(body)/2], body[len(body)/2:]} {
					fw, _ := flate.NewWriter(&raw, 6)
					io.WriteString(fw, part)
					fw.Close()
				}
				var z bytes.Buffer
				zw := zip.NewWriter(&z)
				w, _ := zw.CreateRaw(&zip.FileHeader{Name: "dump.sql", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE([]byte(body)),
					CompressedSize64: uint64(raw.Len()), UncompressedSize64: uint64(len(body)), Modified: time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)})
				w.Write(raw.Bytes())
				zw.Close()
				f.src.zip.Store(z.Bytes())
			},
			exit: exitZipContent, check: "zip-content", cause: `the zip is corrupt or truncated" detail=".*inflates to \d+ bytes, its directory says \d+`,
			then: func(f *fenv) { f.wantPlanted("20262711.tgz", "the last good archive") }},
		{name: "read-only work dir fails archive naming work_dir",
			setup: func(f *fenv) {
				f.needRoot("a read-only tmpfs")
				work := filepath.Join(f.dir, "work")
				os.Mkdir(work, 0o700)
				if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0700", "tmpfs", work).CombinedOutput(); err != nil {
					f.t.Fatalf("mount: %v %s", err, out)
				}
				f.t.Cleanup(func() { exec.Command("umount", "-l", work).Run() })
			},
			exit: exitArchive, check: "archive", cause: `cannot create a folder in work_dir .*read-only file system" key="\[archive\] work_dir"`},
		{name: "work dir the user cannot write fails archive naming work_dir",
			setup: func(f *fenv) {
				f.asNobody()
				root := filepath.Join(f.dir, "root-work")
				os.Mkdir(root, 0o755)
				f.conf["archive"]["work_dir"] = root
			},
			exit: exitArchive, check: "archive", cause: `cannot create a folder in work_dir .*permission denied" key="\[archive\] work_dir"`},
		{name: "a new dump whose file time is older than the last one's (no ETag) is archived: a file time proves nothing", changes: true,
			setup: func(f *fenv) {
				// The state of before 2026-12 remembers the last zip's Last-Modified; this zip is newer
				// but carries an older time (an export restored from a backup, a clock set right).
				last := time.Now().Add(-time.Hour).UTC()
				os.MkdirAll(filepath.Join(f.dir, "state"), 0o700)
				os.WriteFile(filepath.Join(f.dir, "state", stateFile), []byte("sha256="+sha("other")+"\ndate=2026-11-27\nname=20262711.tgz\nlast_modified="+last.Format(http.TimeFormat)+"\n"), 0o600)
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					http.ServeContent(w, r, "dump.zip", last.Add(-24*time.Hour), bytes.NewReader(f.src.zip.Load().([]byte)))
					return true
				})
			},
			exit: exitOK, lines: []string{`OK check=download size=\d+ `}, then: archived},
		{name: "a zip with the same strong ETag is not downloaded again (304) and counts as unchanged", changes: true,
			setup: func(f *fenv) {
				f.writeState(state{SHA256: sha(dump("first")), Size: "1", Date: "2026-11-27", Name: "20262711.tgz", ETag: `"v1"`})
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					w.Header().Set("ETag", `"v1"`)
					return false
				})
			},
			exit: exitWarning, check: "changed", cause: `the dump is the same as the last one archived; nothing to do"`,
			lines: []string{`OK check=download status=304 note="not modified since the last archive: nothing downloaded"`, `SKIPPED check=zip-content reason="the zip is the one archived on 2026-11-27 \(HTTP 304\)"`}},
		{name: "a dump that shrank past max_shrink (an error text after a 1.2 MB dump) fails changed and is not archived",
			setup: func(f *fenv) {
				f.writeState(state{SHA256: sha("other"), Size: "1200000", Date: "2026-11-27", Name: "20262711.tgz"})
				f.zip(map[string]string{"dump.sql": "ERROR 1045 (28000): Access denied for user 'export'@'db'\n"})
			},
			exit: exitChanged, check: "changed",
			cause: `the dump shrank 99% \(57 bytes now, 1200000 bytes in 20262711.tgz, the last archived\): it looks like an error text or a truncated export" key="\[source\] max_shrink" hint=".*archive run --accept-shrink"`},
		{name: "--accept-shrink archives a dump that shrank past max_shrink, and says how much", changes: true,
			setup: func(f *fenv) {
				f.writeState(state{SHA256: sha("other"), Size: "1200000", Date: "2026-11-27", Name: "20262711.tgz"})
			},
			flags: []string{"--accept-shrink"}, exit: exitOK,
			lines: []string{`OK check=changed .* note="shrank \d+% \(\d+ bytes now, 1200000 bytes in 20262711.tgz, the last archived\); archived, as asked by --accept-shrink"`},
			then:  archived},
		{name: "corrupt state file fails changed and is never taken as changed",
			setup: func(f *fenv) {
				os.MkdirAll(filepath.Join(f.dir, "state"), 0o700)
				os.WriteFile(filepath.Join(f.dir, "state", stateFile), []byte("\x00\x17garbage after a crash\n"), 0o600)
			},
			exit: exitChanged, check: "changed", cause: `state file \\".*\\" is corrupt: no valid sha256= line" key="\[archive\] state_dir"`,
			lines: []string{`SKIPPED check=archive `, `SKIPPED check=transfer `}},
		{name: "state file the user cannot read fails changed",
			setup: func(f *fenv) {
				f.asNobody()
				writeState(f.conf["archive"]["state_dir"], state{SHA256: sha("other"), Date: "2026-11-27", Name: "20262711.tgz"})
			},
			exit: exitChanged, check: "changed", cause: `cannot read state file .*permission denied" key="\[archive\] state_dir"`},
		{name: "state that cannot be written after the upload fails, and the rerun uploads nothing", changes: true,
			setup: func(f *fenv) { os.MkdirAll(filepath.Join(f.dir, "state", stateFile+".tmp", "x"), 0o700) },
			run: func(f *fenv) int {
				if code := f.archive("--date", faultDay); code != exitFailure {
					f.t.Errorf("the run whose state cannot be written exits %d, want %d", code, exitFailure)
				}
				f.want(`FAILED check=state cause="cannot write .*" key="\[archive\] state_dir" hint="the archive is on the server, but the next run will archive the same dump again`)
				f.wantArchive(faultName, dump("first"))
				f.first = f.output
				os.RemoveAll(filepath.Join(f.dir, "state", stateFile+".tmp"))
				return f.archive("--date", faultDay)
			},
			exit:  exitOK,
			lines: []string{`OK check=transfer .*note="already on the server with the same content; nothing uploaded"`},
			then:  archived},

		// Destination.
		{name: "changed host key fails connection naming known_hosts",
			setup: func(f *fenv) {
				os.WriteFile(f.ssh.env["KNOWN_HOSTS"], []byte("[127.0.0.1]:"+f.ssh.env["PORT"]+" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o644)
			},
			exit: exitConnection, check: "connection", cause: `the archive server is not trusted .*key="\[destination\] known_hosts"`},
		{name: "unknown host key is refused and never learned",
			setup: func(f *fenv) { os.WriteFile(f.ssh.env["KNOWN_HOSTS"], nil, 0o644) },
			exit:  exitConnection, check: "connection", cause: `the archive server is not trusted `,
			then: func(f *fenv) {
				if data, _ := os.ReadFile(f.ssh.env["KNOWN_HOSTS"]); len(data) > 0 {
					f.t.Errorf("the unknown host key was written to known_hosts: %s", data)
				}
			}},
		{name: "wrong SSH key fails connection as a refused login",
			setup: func(f *fenv) {
				key := filepath.Join(f.dir, "other_key")
				exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).Run()
				f.conf["destination"]["identity_file"] = key
				f.m.secretKey(key)
			},
			exit: exitConnection, check: "connection", cause: `the archive server refused the login" .*key="\[destination\] user"`},
		{name: "wrong FTPS password fails connection as a refused login",
			setup: func(f *fenv) {
				f.use("ftps")
				wrong := filepath.Join(f.dir, "wrong-password")
				os.WriteFile(wrong, []byte("not-the-password-$(x)\n"), 0o600)
				f.conf["destination"]["password_file"] = wrong
				f.m.secretFile(wrong, "the wrong FTPS password")
			},
			exit: exitConnection, check: "connection", cause: `the archive server refused the login"`},
		{name: "archive server refusing connections fails connection",
			setup: func(f *fenv) { f.conf["destination"]["port"] = closedPort(f.t) },
			exit:  exitConnection, check: "connection", cause: `cannot reach the archive server \(refused or unreachable\)" .*key="\[destination\] host"`},
		{name: "missing folder on the server fails connection naming path",
			setup: func(f *fenv) { f.conf["destination"]["path"] = filepath.Join(f.dest.dir, "missing", "deeper") },
			exit:  exitConnection, check: "connection", cause: `the folder does not exist on the archive server" .*key="\[destination\] path"`},
		{name: "folder the server user cannot write fails transfer as permission denied",
			setup: func(f *fenv) {
				ro := filepath.Join(f.dest.dir, "readonly")
				os.Mkdir(ro, 0o555) // read and enter, not write: for the ssh user, its owner or not
				f.conf["destination"]["path"] = ro
			},
			exit: exitTransfer, check: "transfer", cause: `permission denied on the archive server" .*key="\[destination\] path" .*rerun=".*dest-sftp.sh put `},
		diskFull("sftp", ""), diskFull("smb", ""), diskFull("nfs", ""),
		// vsftpd resets the data connection when its disk is full; curl then sees the reset
		// (55) or the 451 reply first, depending on timing: either cause may be logged.
		diskFull("ftps", `|the transfer was interrupted \(connection lost\)"`),
		cutDuringUpload("sftp"), cutDuringUpload("webdav"), cutDuringUpload("smb"),
		{name: "an archive with today's name and the same content is not uploaded again, and says so", changes: true,
			setup: func(f *fenv) {
				if code := f.archive("--date", faultDay); code != exitOK {
					f.t.Fatalf("the first run exits %d", code)
				}
				os.Remove(filepath.Join(f.dir, "state", stateFile)) // the state lost: the dump looks new
			},
			exit:  exitOK,
			lines: []string{`OK check=transfer remote=\S+/20262811.tgz size=\d+ sha256=\w+ note="already on the server with the same content; nothing uploaded"`},
			then:  archived},
		{name: "on a server that compares only sizes, a rerun of the same archive is uploaded again, never taken on its size", changes: true,
			setup: func(f *fenv) {
				f.use("webdav")
				if code := f.archive("--date", faultDay); code != exitOK {
					f.t.Fatalf("the first run exits %d", code)
				}
				os.Remove(filepath.Join(f.dir, "state", stateFile))
			},
			exit:  exitOK,
			lines: []string{`INFO check=transfer remote=\S+/20262811.tgz note="this host uploaded this same archive under that name; the server cannot prove the copy intact, so it is uploaded again"`, `OK check=transfer .*verified=size`},
			then:  archived},
		{name: "an archive with today's name holding another dump (clock set back, --date) is never replaced without --replace",
			setup: func(f *fenv) { f.plant(faultName, "the only copy of another night") },
			exit:  exitTransfer, check: "transfer",
			cause: `20262811.tgz is already on the server and holds sha256 \w+, not this dump's archive .*never replaced without the operator's choice" detail="on the server: 30 bytes; this archive: \d+ bytes" key="\[archive\] name_format" hint=".*archive run --replace"`,
			then:  func(f *fenv) { f.wantPlanted(faultName, "the only copy of another night") }},
		{name: "--replace replaces an archive of today's name holding another dump, and logs what it held", changes: true,
			setup: func(f *fenv) { f.plant(faultName, "a different archive of the same name") },
			flags: []string{"--replace"}, exit: exitOK,
			lines: []string{`INFO check=transfer remote=\S+/20262811.tgz held="sha256 \w+" note="replaced, as asked by --replace"`, `OK check=transfer .*verified=sha256`},
			then:  archived},
		junkNames("sftp"), junkNames("nfs"), junkNames("ftps"),
		{name: "restore takes the newest archive this host recorded, and never a planted one, a link or another file", changes: true,
			setup: func(f *fenv) {
				secret := filepath.Join(f.dir, "secret")
				os.WriteFile(secret, []byte("root:$6$hash"), 0o600)
				// Planted with their own matching NAME.sha256: a link to a secret, and a file that
				// is not the dump.
				for name, hdr := range map[string]*tar.Header{
					"20991231.tgz": {Typeflag: tar.TypeSymlink, Name: "dump.sql", Linkname: secret, Mode: 0o777},
					"20991230.tgz": {Typeflag: tar.TypeReg, Name: "authorized_keys", Mode: 0o600, Size: 12},
				} {
					var b bytes.Buffer
					zw := gzip.NewWriter(&b)
					tw := tar.NewWriter(zw)
					tw.WriteHeader(hdr)
					if hdr.Size > 0 {
						io.WriteString(tw, "ssh-ed25519 ")
					}
					tw.Close()
					zw.Close()
					f.plant(name, b.String())
					f.plant(name+sidecarExt, sha(b.String())+"  "+name+"\n")
				}
			},
			exit: exitOK, lines: []string{`OK check=transfer `},
			then: func(f *fenv) {
				to := filepath.Join(f.dir, "restored")
				if code := f.archive("restore", "--latest", "--to", to); code != exitOK {
					f.t.Errorf("restore --latest exits %d", code)
				}
				f.want(`restored .*/dump.sql from .*/` + faultName + `\n  archive sha256 \w+ \(matches this host.s record in `)
				if got, _ := os.ReadFile(filepath.Join(to, "dump.sql")); string(got) != dump("first") {
					f.t.Error("restore --latest did not give the published dump")
				}
				os.RemoveAll(to)
				if code := f.archive("restore", "20991231.tgz", "--to", to); code != exitFailure {
					f.t.Errorf("restore of a planted archive exits %d", code)
				}
				f.want(`no sha256 recorded for 20991231.tgz by this host`)
				for _, name := range []string{"20991231.tgz", "20991230.tgz"} {
					if code := f.archive("restore", name, "--use-server-checksum", "--to", to); code != exitFailure {
						f.t.Errorf("restore %s --use-server-checksum exits %d", name, code)
					}
					f.want(`the archive is not a valid .tgz holding the dump alone, as a regular file`)
				}
				if entries, _ := os.ReadDir(to); len(entries) > 0 {
					f.t.Errorf("a refused restore wrote in --to: %v", entries)
				}
			}},
		plantedLinks("sftp", exitOK), plantedLinks("ftps", exitOK), plantedLinks("nfs", exitOK), plantedLinks("webdav", exitTransfer),

		// Retention.
		{name: "names retention cannot parse are left alone", changes: true,
			setup: func(f *fenv) {
				f.conf["archive"]["name_format"] = "%Y%m%d"
				f.conf["retention"]["keep_days"], f.conf["retention"]["keep_min"] = "0", "1"
				for _, n := range []string{"notes.txt", "2025-01-01.tgz", "20251301.tgz", "backup-20250101.tgz", "20250101.tgz.bak", "20250101.TGZ", ".hidden", "20250101.tgz"} {
					f.plant(n, "kept by a person")
				}
			},
			exit:  exitOK,
			lines: []string{`INFO check=prune deleted=20250101.tgz date=2025-01-01 reason="696 days old, past keep_days = 0"`, `OK check=prune kept=1 deleted=1 .*ignored=7`},
			then: func(f *fenv) {
				f.wantNames(".hidden,2025-01-01.tgz,20250101.TGZ,20250101.tgz.bak,20251301.tgz,20261128.tgz,20261128.tgz.sha256,backup-20250101.tgz,notes.txt")
			}},
		{name: "a deletion the server refuses is a warning and the run goes on", changes: true,
			setup: func(f *fenv) {
				f.conf["archive"]["name_format"] = "%Y%m%d"
				f.conf["retention"]["keep_min"] = "1"
				f.plant("20250102.tgz", "old")
				os.WriteFile(filepath.Join(f.dest.dir, "20250101.tgz"), []byte("old, root's"), 0o644)
				// A shared folder with the sticky bit (like /tmp): each may delete only its own files.
				f.needRoot("a file of root's on the server")
				os.Chown(f.dest.dir, 0, 0)
				os.Chmod(f.dest.dir, os.ModeSticky|0o777)
			},
			exit: exitWarning, check: "prune", cause: `cannot delete: permission denied on the archive server" detail=`,
			lines: []string{`INFO check=prune deleted=20250102.tgz `, `OK check=record `},
			then: func(f *fenv) {
				f.wantNames("20250101.tgz,20261128.tgz,20261128.tgz.sha256")
				f.wantArchive("20261128.tgz", dump("first"))
			}},
		{name: "keep_min holds when every archive is past keep_days after weeks of failed uploads", changes: true,
			setup: func(f *fenv) {
				f.conf["archive"]["name_format"] = "%Y%m%d"
				f.conf["retention"]["keep_days"], f.conf["retention"]["keep_min"] = "30", "3"
				for d := 1; d <= 5; d++ {
					f.plant(fmt.Sprintf("202609%02d.tgz", d), "old")
				}
			},
			run: func(f *fenv) int {
				os.Chmod(f.dest.dir, 0o555) // the uploads fail...
				if code := f.archive("--date", faultDay); code != exitTransfer {
					f.t.Errorf("the failing upload exits %d, want %d", code, exitTransfer)
				}
				f.wantNames("20260901.tgz,20260902.tgz,20260903.tgz,20260904.tgz,20260905.tgz")
				f.first = f.output
				os.Chmod(f.dest.dir, 0o755) // ...until they work again
				return f.archive("--date", faultDay)
			},
			exit:  exitOK,
			lines: []string{`INFO check=prune deleted=20260901.tgz date=2026-09-01 reason="88 days old, past keep_days = 30"`, `INFO check=prune deleted=20260903.tgz`, `OK check=prune kept=3 deleted=3 keep_days=30 keep_min=3`},
			then:  func(f *fenv) { f.wantNames("20260904.tgz,20260905.tgz,20261128.tgz,20261128.tgz.sha256") }},

		// Process.
		killDuring("url", func(f *fenv) func() bool {
			var release atomic.Bool
			s := f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
				if r.Header.Get("Range") != "" && !release.Load() { // the url check asks for one byte
					<-r.Context().Done()
					return true
				}
				return false
			})
			f.t.Cleanup(func() { release.Store(true) })
			return func() bool {
				if s.hits.Load() > 0 {
					release.Store(true) // for the run after the kill
					return true
				}
				return false
			}
		}),
		killDuring("download", func(f *fenv) func() bool {
			f.src.mode.Store("stall")
			return func() bool {
				if partial(filepath.Join(f.dir, "work", "run-*", "source.zip.part")) {
					f.src.mode.Store("ok")
					return true
				}
				return false
			}
		}),
		killDuring("zip-content", func(f *fenv) func() bool {
			// No tool to pause: archive's own Go code inflates. A dump of 1 GiB of zeros (a 1 MiB
			// zip) takes a second or so to write to disk; the next run gets the usual zip back.
			f.src.zip.Store(zerosZip(f.t, 1<<30))
			f.conf["archive"]["compressor"] = "pigz" // the dump is written, so it is seen
			return func() bool { return partial(filepath.Join(f.dir, "work", "run-*", "dump.sql.part")) }
		}),
		killDuring("archive", func(f *fenv) func() bool {
			f.conf["archive"]["compressor"] = "pigz" // a compression long enough to be killed in
			a, b := f.pauseAt("pigz", "-c*-[1-9]"), f.pauseAt("gzip", "-c*-[1-9]")
			return func() bool { return exists(a) || exists(b) }
		}),
		killDuring("connection", func(f *fenv) func() bool { return paused(f.pauseAt("ssh", "*command -v*")) }),
		killDuring("transfer upload", func(f *fenv) func() bool {
			f.zip(map[string]string{"dump.sql": dump("first") + noise(4, 3<<20)})
			p := f.viaProxy()
			p.slow.Store(true)
			return func() bool {
				if partial(filepath.Join(f.dest.dir, faultName+".*.part")) {
					p.slow.Store(false)
					return true
				}
				return false
			}
		}),
		killDuring("transfer verification", func(f *fenv) func() bool { return paused(f.pauseAt("ssh", "*&& sha256sum -- *")) }),
		killDuring("prune", func(f *fenv) func() bool {
			f.conf["archive"]["name_format"] = "%Y%m%d"
			f.conf["retention"]["keep_min"] = "1"
			f.plant("20250101.tgz", "old")
			return paused(f.pauseIf("sftp", `grep -qF '@rm "20250101.tgz"' "$2"`)) // sftp -b BATCH: the batch holds the command
		}),
		{name: "kill -9 of archive alone takes its step script with it, and no run overlaps the tool it left", changes: true,
			setup: func(f *fenv) {
				f.src.mode.Store("stall")
				f.conf["source"]["timeout"], f.conf["source"]["retries"] = "4", "0"
			},
			run: func(f *fenv) int {
				p := f.start("--date", faultDay)
				f.waitFor("the download to start", func() bool { return partial(filepath.Join(f.dir, "work", "run-*", "source.zip.part")) })
				tree := processTree(p.cmd.Process.Pid)
				first := cmdline(tree[min(1, len(tree)-1)])
				syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
				p.wait()
				// tree: archive, the step script it started, then what the script started.
				if len(tree) < 3 || !strings.Contains(first, "fetch.sh") {
					f.t.Fatalf("the killed run had no step script and tool running: %v", tree)
				}
				script, tools := tree[1:2], tree[2:]
				f.waitFor("the step script to die with archive", func() bool { return !slices.ContainsFunc(script, alive) })
				if !slices.ContainsFunc(tools, alive) {
					f.t.Fatal("curl ended at once: nothing is left to overlap")
				}
				f.src.mode.Store("ok")
				if code := f.archive("--date", faultDay); code != exitLocked {
					f.t.Errorf("a run beside the killed run's curl exited %d, want %d", code, exitLocked)
				}
				f.want(`FAILED check=lock cause="another archive run is active \(pid ` + strconv.Itoa(p.cmd.Process.Pid) + `, no longer running: a step it started still holds`)
				f.first = f.output
				f.waitFor("the left tool to end by its own timeout", func() bool { return !slices.ContainsFunc(tools, alive) })
				return f.archive("--date", faultDay)
			},
			exit: exitOK, lines: recovered, then: archived},
		{name: "two runs started together: one leaves with exit 4, one uploads", changes: true,
			setup: func(f *fenv) {
				f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if r.Method == http.MethodGet {
						time.Sleep(1500 * time.Millisecond)
					}
					return false
				})
			},
			run: func(f *fenv) int {
				a, b := f.start("--date", faultDay), f.start("--date", faultDay)
				ca, oa := a.wait(), f.output
				cb, ob := b.wait(), f.output
				if ca == exitLocked {
					ca, oa, cb, ob = cb, ob, ca, oa
				}
				if ca != exitOK {
					f.t.Errorf("the run holding the lock exits %d, want 0", ca)
				}
				if n := strings.Count(oa+ob, "OK check=transfer "); n != 1 {
					f.t.Errorf("%d uploads, want exactly 1", n)
				}
				f.first, f.output = oa, ob
				return cb
			},
			exit: exitLocked, check: "lock", cause: `another archive run is active \(pid \d+, .*archive\.lock.*\); this run leaves it alone" key="\[archive\] state_dir"`,
			then: func(f *fenv) {
				f.wantNames(faultName + "," + faultName + ".sha256")
				if lr, err := readLastRun(filepath.Join(f.dir, "state")); err != nil || lr.Outcome != "SUCCESS" {
					f.t.Errorf("last-run.json is not the successful run's: %v %+v", err, lr)
				}
			}},
		{name: "SIGTERM during the download logs FAILED, cleans up and mails",
			setup: func(f *fenv) { f.src.mode.Store("stall") },
			run: func(f *fenv) int {
				p := f.start("--date", faultDay)
				f.waitFor("the download to start", func() bool { return partial(filepath.Join(f.dir, "work", "run-*", "source.zip.part")) })
				p.cmd.Process.Signal(syscall.SIGTERM)
				return p.wait()
			},
			exit: exitFailure, check: "download", cause: `the run was interrupted by a signal \(SIGTERM, SIGINT or SIGHUP\)" .*hint="the next run starts over`},
		{name: "SIGTERM during the upload logs FAILED and leaves no temporary file on the server",
			setup: func(f *fenv) {
				f.zip(map[string]string{"dump.sql": noise(5, 3<<20)})
				f.viaProxy().slow.Store(true)
			},
			run: func(f *fenv) int {
				p := f.start("--date", faultDay)
				f.waitFor("the upload to start", func() bool { return partial(filepath.Join(f.dest.dir, faultName+".*.part")) })
				p.cmd.Process.Signal(syscall.SIGTERM)
				return p.wait()
			},
			exit: exitFailure, check: "transfer", cause: `the run was interrupted by a signal`},

		// Conf.
		{name: "missing conf exits 2 and says so on stderr", mail: "off",
			setup: func(f *fenv) { f.confFile = filepath.Join(f.dir, "nothere.conf") },
			exit:  exitUsage, check: "conf", cause: `cannot read conf \\".*nothere.conf\\": no such file \(give its path with -c FILE\)"`},
		{name: "conf the user cannot read exits 2 naming the permission", mail: "none",
			setup: func(f *fenv) {
				f.asNobody()
				f.asUser = 0 // the conf stays root's, mode 600
			},
			exit: exitUsage, check: "conf", cause: `cannot read conf .*permission denied \(the conf must be readable by the user running archive\)`},
		{name: "conf syntax error exits 2 with the parser's words", mail: "none",
			setup: func(f *fenv) {
				f.confFile = f.writeConf()
				appendFile(f.t, f.confFile, "this line has no equals sign\n")
			},
			exit: exitUsage, check: "conf", cause: `cannot parse conf .*this line has no equals sign`},
		{name: "unknown keys and sections exit 2, each named",
			setup: func(f *fenv) {
				f.conf["destination"]["hostname"] = "archive.example.org"
				f.confFile = f.writeConf()
				appendFile(f.t, f.confFile, "[backup]\nkeep = 3\n")
			},
			exit: exitUsage, check: "conf", cause: `\[`,
			lines: []string{`FAILED check=conf cause="\[destination\] hostname \(line \d+\): unknown key`, `FAILED check=conf cause="\[backup\] \(line \d+\): unknown section`}},
		{name: "values of the wrong type exit 2, every one listed with its line",
			setup: func(f *fenv) {
				for k, v := range map[string]string{"retries": "many", "timeout": "-5", "max_size": "10X"} {
					f.conf["source"][k] = v
				}
				for k, v := range map[string]string{"compression_level": "11", "on_unchanged": "ignore", "allow_root": "maybe", "name_format": "%Y-%m"} {
					f.conf["archive"][k] = v
				}
				f.conf["destination"]["port"] = "99999"
				f.conf["retention"]["keep_min"] = "0"
			},
			exit: exitUsage, check: "conf", cause: `\[`,
			lines: []string{`\[source\] retries \(line \d+\): must be a whole number from 0 to 20 \(got \\"many\\"\)`, `\[source\] timeout \(line \d+\): must be a whole number`,
				`\[source\] max_size \(line \d+\): must be a size`, `\[archive\] compression_level \(line \d+\)`, `\[archive\] on_unchanged \(line \d+\): must be one of skip, fail, archive`,
				`\[archive\] allow_root \(line \d+\)`, `\[archive\] name_format \(line \d+\)`, `\[destination\] port \(line \d+\): must be a whole number from 1 to 65535`,
				`\[retention\] keep_min \(line \d+\)`}},
		{name: "shell syntax in source, archive, log and mail values is data, never run", changes: true,
			setup: func(f *fenv) {
				name := "-d " + inj + ".sql"
				f.zip(map[string]string{name: dump("first")})
				s := f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool { return false })
				f.conf["source"]["url"] = s.srv.URL + "/exports/dump.zip?a=$(touch%20$HOME-i4)&b=`touch%20$HOME-i5`;c='q'"
				f.conf["source"]["expected_file"] = name
				f.conf["archive"]["work_dir"] = "-w " + inj
				f.conf["archive"]["state_dir"] = "-s " + inj
				f.conf["log"]["file"] = "-l " + inj + ".log"
				f.mailConf("always")
				f.conf["mail"]["subject_success"] = "[archive] " + inj + " {name}"
			},
			exit: exitOK,
			then: func(f *fenv) {
				noInjection(f)
				member, body := sqlInArchive(f.t, filepath.Join(f.dest.dir, faultName))
				if member != "-d "+inj+".sql" || body != dump("first") {
					f.t.Errorf("the archive holds %q", member)
				}
				if msgs := f.mails(true); len(msgs) != 1 || msgs[0].Subject != "[archive] "+inj+" "+faultName {
					f.t.Errorf("the subject is not the conf's text: %+v", msgs)
				}
				if !exists(filepath.Join(f.dir, "-s "+inj, stateFile)) || !exists(filepath.Join(f.dir, "-l "+inj+".log")) {
					f.t.Error("the state or the log is not where the conf says")
				}
			}},
		{name: "shell syntax in the destination folder is data, never run", changes: true,
			setup: func(f *fenv) {
				odd := filepath.Join(f.dest.dir, "-p "+inj)
				os.Mkdir(odd, 0o755)
				os.Chown(odd, f.dest.owner, -1)
				f.conf["destination"]["path"] = odd
			},
			exit: exitOK,
			then: func(f *fenv) {
				noInjection(f)
				if found, _ := filepath.Glob("/var/lib/archivetest-i*"); len(found) > 0 {
					f.t.Errorf("the server ran a command from the folder's name: %v", found)
				}
				f.wantArchive(filepath.Join("-p "+inj, faultName), dump("first"))
			}},
		{name: "destination user starting with - is a user name, not an ssh option",
			setup: func(f *fenv) { f.conf["destination"]["user"] = "-oProxyCommand=touch $HOME-i6" },
			exit:  exitConnection, check: "connection", cause: `the archive server refused the login"`, then: noInjection},
		{name: "destination host starting with - is a host name, not an ssh option",
			setup: func(f *fenv) { f.conf["destination"]["host"] = "-oProxyCommand=touch $HOME-i7" },
			exit:  exitConnection, check: "connection", cause: `cannot reach the archive server`, then: noInjection},
		{name: "line breaks, control characters and a recipient starting with - are refused, exit 2", mail: "none",
			setup: func(f *fenv) {
				f.conf["source"]["expected_file"] = "\"\"\"dump\n.sql\"\"\""
				f.conf["destination"]["user"] = "arch\tive"
				f.conf["mail"]["to"] = "-oQ/tmp/x@example.org"
			},
			exit: exitUsage, check: "conf", cause: `\[`,
			lines: []string{`\[source\] expected_file \(line \d+\): contains a control character or line break`, `\[destination\] user \(line \d+\): contains a control character`,
				`\[mail\] to \(line \d+\): \\"-oQ/tmp/x@example.org\\" is not a plain mail address`}},

		// Security.
		leakNothing("sftp"), leakNothing("ftps"), leakNothing("webdav"), leakNothing("smb"), leakNothing("nfs"),
		{name: "files the run writes are private: 0600 and 0700, the log 0640", changes: true,
			setup: func(f *fenv) {
				f.mailConf("always")
				f.conf["mail"]["attach_log"] = "always"
				f.conf["log"]["file"] = "log/archive.log"
				for _, tool := range []string{"pigz", "gzip"} {
					f.record(tool, `stat -c '%a %F %n' "$PWD/.." "$PWD" "$PWD"/*`)
				}
				// mail.sh runs in the mail's own folder; mutt's muttrc is a pipe (/dev/fd).
				f.record("mutt", `stat -c '%a %F %n' "$PWD" "$PWD"/*`)
			},
			exit: exitOK,
			then: func(f *fenv) {
				modes, dirs := map[string]string{}, map[string]bool{}
				for _, tool := range []string{"pigz", "gzip", "mutt"} {
					data, _ := os.ReadFile(filepath.Join(f.dir, "recorded-"+tool))
					for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
						if m := regexp.MustCompile(`^(\d+) (directory|regular (?:empty )?file) (.*)$`).FindStringSubmatch(l); m != nil {
							modes[filepath.Clean(m[3])], dirs[filepath.Clean(m[3])] = m[1], m[2] == "directory"
						}
					}
				}
				state := filepath.Join(f.dir, "state")
				for _, p := range []string{state, filepath.Join(state, stateFile), filepath.Join(state, recordsFile), filepath.Join(state, lastRunFile),
					filepath.Join(state, "archive.lock"), filepath.Join(f.dir, "work"), filepath.Join(f.dir, "log"), filepath.Join(f.dir, "log", "archive.log"),
					filepath.Join(f.dest.dir, faultName)} {
					if st, err := os.Stat(p); err == nil {
						modes[p], dirs[p] = strconv.FormatUint(uint64(st.Mode().Perm()), 8), st.IsDir()
					} else {
						f.t.Errorf("%s: %v", p, err)
					}
				}
				if len(modes) < 14 {
					f.t.Errorf("too few files seen during the run: %v", modes)
				}
				for p, mode := range modes {
					want := map[bool]string{true: "700", false: "600"}[dirs[p]]
					switch p {
					case filepath.Join(f.dir, "log", "archive.log"):
						want = "640"
					case filepath.Join(f.dir, "log"):
						want = "750"
					}
					if mode != want {
						f.t.Errorf("%s has mode %s, want %s", p, mode, want)
					}
				}
				f.t.Logf("modes: %v", modes)
			}},
		{name: "conf and password files readable by others get a warning line", changes: true,
			setup: func(f *fenv) {
				f.confMode = 0o644
				loose := filepath.Join(f.dir, "smtp-password")
				data, _ := os.ReadFile(f.conf["mail"]["smtp_password_file"])
				os.WriteFile(loose, data, 0o644)
				f.conf["mail"]["smtp_password_file"] = loose
			},
			exit: exitOK, check: "conf", cause: `conf \\".*\\" is readable by group or others \(mode 0644\) and names secret files; chmod 600 it"`,
			lines: []string{`WARNING check=conf cause="\[mail\] smtp_password_file: \\".*smtp-password\\" is readable by group or others \(mode 0644\); chmod 600 it"`, `RESULT SUCCESS`}},
		{name: "an SSH key readable by others gets a warning line and ssh refuses it",
			setup: func(f *fenv) {
				loose := filepath.Join(f.dir, "loose_key")
				data, _ := os.ReadFile(f.conf["destination"]["identity_file"])
				os.WriteFile(loose, data, 0o644)
				f.conf["destination"]["identity_file"] = loose
			},
			exit: exitConnection, check: "connection", cause: `the archive server refused the login"`,
			lines: []string{`WARNING check=conf cause="\[destination\] identity_file: \\".*loose_key\\" is readable by group or others \(mode 0644\); chmod 600 it"`}},
		{name: "no conf key turns TLS verification or host key checking off", mail: "none",
			setup: func(f *fenv) {
				f.conf["source"]["insecure"] = "yes"
				f.conf["source"]["verify_tls"] = "no"
				f.conf["destination"]["strict_host_key_checking"] = "no"
				f.conf["destination"]["known_hosts"] = ""
				f.conf["mail"]["starttls"] = "no"
			},
			exit: exitUsage, check: "conf", cause: `\[`,
			lines: []string{`\[source\] insecure \(line \d+\): unknown key`, `\[source\] verify_tls \(line \d+\): unknown key`, `\[destination\] strict_host_key_checking \(line \d+\): unknown key`,
				`\[destination\] known_hosts \(line \d+\): is required`, `\[mail\] starttls \(line \d+\): must be yes when smtp_user is set`}},
		{name: "a state_dir others can write is refused before anything is done, naming the key",
			setup: func(f *fenv) {
				os.MkdirAll(filepath.Join(f.dir, "state"), 0o700)
				os.Chmod(filepath.Join(f.dir, "state"), 0o777)
			},
			exit: exitFailure, check: "lock", cause: `state_dir \S+/state\S+ is writable by group or others \(mode 0777\): another user could read the dump or plant links there; chmod 700 it" key="\[archive\] state_dir"`},
		{name: "a work_dir inside a folder others can write (no sticky bit) is refused, naming the key",
			setup: func(f *fenv) {
				shared := filepath.Join(f.dir, "shared")
				os.Mkdir(shared, 0o777)
				os.Chmod(shared, 0o777)
				f.conf["archive"]["work_dir"] = filepath.Join(shared, "work")
			},
			exit: exitArchive, check: "archive", cause: `work_dir \S+/shared/work\S+ is inside \S+/shared\S+, which others can write \(mode 0777, no sticky bit\): another user could swap the folder; chmod o-w it" key="\[archive\] work_dir"`},
		{name: "a link planted as a file archive writes in state_dir is never written through", changes: true,
			setup: func(f *fenv) {
				victim := filepath.Join(f.dir, "victim")
				os.WriteFile(victim, []byte("root only"), 0o600)
				os.MkdirAll(filepath.Join(f.dir, "state"), 0o700)
				for _, n := range []string{stateFile + ".tmp", recordsFile + ".tmp", lastRunFile + ".tmp"} {
					os.Symlink(victim, filepath.Join(f.dir, "state", n))
				}
			},
			exit: exitOK, then: func(f *fenv) {
				archived(f)
				if got, _ := os.ReadFile(filepath.Join(f.dir, "victim")); string(got) != "root only" {
					f.t.Errorf("a file was written through a link planted in state_dir: %q", got)
				}
			}},
		{name: "known_hosts others can write is refused, naming the key",
			setup: func(f *fenv) {
				os.Chmod(f.conf["destination"]["known_hosts"], 0o666)
				f.t.Cleanup(func() { os.Chmod(f.conf["destination"]["known_hosts"], 0o644) })
			},
			exit: exitUsage, check: "conf", cause: `\[destination\] known_hosts \(line \d+\): \S+ is writable by group or others \(mode 0666\): whoever can write it decides what archive trusts; chmod go-w it`},
		{name: "user configuration planted in HOME (ssh, curl, mutt, smbclient) changes nothing and runs nothing", changes: true,
			setup: func(f *fenv) {
				f.mailConf("always")
				cmd := "touch " + f.home + "-i1"
				os.MkdirAll(filepath.Join(f.home, ".ssh"), 0o700)
				os.MkdirAll(filepath.Join(f.home, ".smb"), 0o700)
				for name, body := range map[string]string{
					".ssh/config":   "Host *\n  ProxyCommand " + cmd + "\n  PermitLocalCommand yes\n  LocalCommand " + cmd + "\n",
					".muttrc":       "set sendmail=\"" + cmd + "\"\n",
					".curlrc":       "output = " + f.home + "-i2\n",
					".popt":         "rsync alias --x -e'" + cmd + "'\n",
					".smb/smb.conf": "[global]\n  log file = " + f.home + "-i3\n",
				} {
					os.WriteFile(filepath.Join(f.home, name), []byte(body), 0o600)
				}
			},
			exit: exitOK, then: func(f *fenv) {
				archived(f)
				noInjection(f)
			}},
		{name: "kill -9 during the mail leaves no secret on disk, and the next run sweeps what it left", changes: true,
			setup: func(f *fenv) { f.mailConf("always") },
			run: func(f *fenv) int {
				marker := f.pauseAt("mutt", "*")
				p := f.start("--date", faultDay)
				f.waitFor("the mail to be under way", paused(marker))
				// Every file archive writes: its folders, and /tmp where the mail lived before 2026-12.
				roots, _ := filepath.Glob(filepath.Join(os.TempDir(), "archive-mail*"))
				seen := 0
				for _, root := range append(roots, filepath.Join(f.dir, "work"), filepath.Join(f.dir, "state"), filepath.Join(f.dir, "archive.log")) {
					filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
						if data, rerr := os.ReadFile(path); err == nil && d.Type().IsRegular() && rerr == nil {
							seen++
							f.noSecrets(path+" (during the mail)", string(data))
						}
						return nil
					})
				}
				if seen < 5 {
					f.t.Errorf("only %d files seen during the mail", seen)
				}
				killTree(p.cmd.Process.Pid)
				p.wait()
				f.first = f.output
				if left, _ := filepath.Glob(filepath.Join(f.dir, "work", "run-mail-*")); len(left) == 0 {
					f.t.Error("the killed mail left no folder in work_dir: it was not killed during the mail")
				}
				f.bin = ""
				return f.archive("--date", faultDay)
			},
			// The killed run had archived the dump: the next one finds it unchanged.
			exit: exitWarning, check: "changed", cause: `the dump is the same as the last one archived`,
			lines: []string{`INFO check=cleanup removed=\S+/run-mail-\S+ reason="left by an interrupted run"`}, then: archived},
		{name: "a log on a full disk fails the run on stderr and in the exit code, even when the archive is safe", changes: true,
			setup: func(f *fenv) {
				logDir := filepath.Join(f.dir, "log")
				f.mountSmall(logDir, "64k", os.Geteuid())
				f.conf["log"]["file"] = "log/archive.log"
				fill, _ := os.Create(filepath.Join(logDir, "filler"))
				for _, err := fill.Write(make([]byte, 4096)); err == nil; _, err = fill.Write(make([]byte, 512)) {
				}
				fill.Close()
			},
			exit: exitFailure, check: "log", cause: `cannot write the log file \S+ no space left on device" key="\[log\] file" hint="free space on the log's disk`,
			lines: []string{`archive: error: cannot write the log file .*no space left on device`}, then: archived},
		{name: "a ~/.curlrc asking for insecure does not turn TLS verification off",
			setup: func(f *fenv) {
				os.WriteFile(filepath.Join(f.home, ".curlrc"), []byte("insecure\n"), 0o644)
				delete(f.conf["source"], "ca_file")
			},
			exit: exitURL, check: "url", cause: `the source's TLS certificate is not trusted`},
		{name: "CA bundles named in the environment are not trusted",
			setup: func(f *fenv) {
				f.extra = []string{"SSL_CERT_FILE=" + f.src.caFile, "CURL_CA_BUNDLE=" + f.src.caFile, "SSL_CERT_DIR=" + f.dir}
				delete(f.conf["source"], "ca_file")
			},
			exit: exitURL, check: "url", cause: `the source's TLS certificate is not trusted`},
	}
}

// diskFull: the server's folder is a 64 KiB disk; the archive is bigger. or: another cause
// the protocol may give.
func diskFull(proto, or string) fault {
	return fault{name: "server disk full fails transfer and leaves no partial file (" + proto + ")",
		setup: func(f *fenv) {
			if proto != "sftp" {
				f.use(proto)
			}
			f.mountSmall(f.dest.dir, "64k", f.dest.owner)
			if proto == "nfs" {
				f.conf["destination"]["require_mount"] = "yes" // the tmpfs is a real mount point
			}
			f.zip(map[string]string{"dump.sql": noise(6, 400<<10)})
		},
		exit: exitTransfer, check: "transfer", cause: `(?:the archive server has no space left" .*key="\[destination\] path"` + or + `)`}
}

// plantedLinks: links planted where the tool wrote before 2026-12 (NAME.part, .NAME.part) and
// at today's final name, each pointing at yesterday's archive, which must stay as it was.
// nginx shows the final link as the file it points to: its content is not ours, so the run
// refuses to replace it.
func plantedLinks(proto string, exit int) fault {
	tc := fault{name: "links planted at the temporary and final names are never written through (" + proto + ")", changes: true,
		setup: func(f *fenv) {
			if proto != "sftp" {
				f.use(proto)
			}
			f.plant("20262711.tgz", "yesterday's archive")
			for _, n := range []string{faultName + ".part", "." + faultName + ".part", faultName} {
				if err := os.Symlink("20262711.tgz", filepath.Join(f.dest.dir, n)); err != nil {
					f.t.Fatal(err)
				}
			}
		},
		exit: exit, lines: []string{`OK check=transfer .*verified=`},
		then: func(f *fenv) { f.wantPlanted("20262711.tgz", "yesterday's archive") }}
	if exit != exitOK {
		tc.check, tc.cause, tc.lines = "transfer", `20262811.tgz is already on the server and holds (sha256 \w+|other content), not this dump's archive`, nil
	}
	return tc
}

// junkNames: names holding a line break, a tab or a terminal escape, each made to forge a newer
// archive in a listing, beside two old archives this host recorded: the forged entries take no
// keep_min place from them, and archive list shows every junk name escaped, on one line.
func junkNames(proto string) fault {
	junk := []string{"x\n20991231.tgz", "x\n20991230.tgz\t9", "\x1b[2K\r20991229.tgz"}
	return fault{name: "names holding line breaks or escapes forge no archive in a listing and push no recorded archive out (" + proto + ")", changes: true,
		setup: func(f *fenv) {
			if proto != "sftp" {
				f.use(proto)
			}
			f.conf["archive"]["name_format"] = "%Y%m%d"
			f.conf["retention"]["keep_days"], f.conf["retention"]["keep_min"] = "30", "3"
			recs := map[string]string{}
			for _, n := range []string{"20260901.tgz", "20260902.tgz"} {
				f.plant(n, "an old archive of this host")
				recs[n] = sha("an old archive of this host")
			}
			for _, n := range junk {
				f.plant(n, "junk")
			}
			os.MkdirAll(filepath.Join(f.dir, "state"), 0o700)
			writeRecords(filepath.Join(f.dir, "state"), recs)
		},
		exit: exitOK, lines: []string{`OK check=prune kept=3 deleted=0 `},
		then: func(f *fenv) {
			f.wantPlanted("20260901.tgz", "an old archive of this host")
			f.wantPlanted("20260902.tgz", "an old archive of this host")
			f.archive("list")
			for _, l := range strings.Split(f.output, "\n") {
				if strings.ContainsAny(l, "\r\x1b\t") || strings.HasPrefix(l, "20991") {
					f.t.Errorf("archive list printed a raw control character or a forged line: %q", l)
				}
			}
		}}
}

// cutDuringUpload: the connection is cut after 512 KiB of the upload; the next run succeeds.
func cutDuringUpload(proto string) fault {
	return fault{name: "connection cut during the upload fails transfer, and the next run succeeds (" + proto + ")",
		setup: func(f *fenv) {
			if proto != "sftp" {
				f.use(proto)
			}
			f.viaProxy().armed.Store(true)
			f.zip(map[string]string{"dump.sql": dump("first") + noise(7, 3<<20)})
		},
		exit: exitTransfer, check: "transfer", cause: `the transfer was interrupted \(connection lost\)"`,
		then: func(f *fenv) {
			if code := f.archive("--date", faultDay); code != exitOK {
				f.t.Errorf("the run after the cut exits %d, want 0", code)
			}
			if _, body := sqlInArchive(f.t, filepath.Join(f.dest.dir, faultName)); !strings.HasPrefix(body, dump("first")) {
				f.t.Error("the archive after the cut does not hold the dump")
			}
		}}
}

// killDuring: kill -9 of the run and everything it started while the check runs (until says
// when it does), then a normal run of the same day must recover: stale lock and leftovers gone.
func killDuring(check string, until func(f *fenv) func() bool) fault {
	return fault{name: "kill -9 during " + check + ", then a normal run recovers", changes: true,
		run: func(f *fenv) int {
			reached := until(f)
			p := f.start("--date", faultDay)
			f.waitFor(check+" to be under way", func() bool {
				select {
				case <-p.done:
					return true
				default:
					return reached()
				}
			})
			killTree(p.cmd.Process.Pid)
			p.wait()
			f.first = f.output
			if strings.Contains(f.first, " RESULT ") {
				f.t.Fatalf("the run ended before it was killed")
			}
			lock, _ := os.ReadFile(filepath.Join(f.dir, "state", "archive.lock"))
			if strings.TrimSpace(string(lock)) != strconv.Itoa(p.cmd.Process.Pid) {
				f.t.Errorf("the lock file holds %q, not the killed run's pid", lock)
			}
			if old, _ := filepath.Glob(filepath.Join(f.dir, "work", "run-*")); len(old) == 0 {
				f.t.Error("the killed run left no work folder: it was not killed mid-run")
			}
			f.bin = ""
			f.src.zip.Store(makeZip(f.t, map[string]string{"dump.sql": dump("first")}))
			if check == "prune" { // the state moved on before prune: the next night brings a new dump
				f.src.zip.Store(makeZip(f.t, map[string]string{"dump.sql": dump("next")}))
				return f.archive("--date", "2026-11-29")
			}
			return f.archive("--date", faultDay)
		},
		exit: exitOK, lines: []string{`INFO check=cleanup removed=\S+/run-[0-9a-f]+ reason="left by an interrupted run"`},
		then: func(f *fenv) {
			switch check {
			case "prune":
				f.want(`INFO check=prune deleted=20250101.tgz `)
				f.wantNames("20261128.tgz,20261128.tgz.sha256,20261129.tgz,20261129.tgz.sha256")
			case "transfer upload", "transfer verification":
				f.want(`INFO check=transfer removed=20262811\.tgz\.[0-9a-f]{16}\.part reason="temporary file left by an interrupted run"`)
				f.wantNames(faultName + "," + faultName + ".sha256")
			default:
				f.wantNames(faultName + "," + faultName + ".sha256")
				f.wantArchive(faultName, dump("first"))
			}
		}}
}

// leakNothing: a whole run over one protocol, with the success mail and the log attached.
func leakNothing(proto string) fault {
	return fault{name: "a full run over " + proto + " leaks no secret into argv, environment, log, mail or last-run.json", changes: true,
		setup: func(f *fenv) {
			if proto != "sftp" {
				f.use(proto)
			}
			f.mailConf("always")
			f.conf["mail"]["attach_log"] = "always"
		},
		exit: exitOK,
		then: func(f *fenv) {
			msgs := f.mails(true)
			if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Subject, "[archive] SUCCESS "+faultName) || !strings.Contains(msgs[0].attachment, "OK check=transfer") {
				f.t.Errorf("want one success mail with the log attached, got %+v", msgs)
			}
			f.wantArchive(faultName, dump("first"))
		}}
}

// zip publishes a zip of these members.
func (f *fenv) zip(members map[string]string) { f.src.zip.Store(makeZip(f.t, members)) }

// partial: a file matching the pattern exists and is not empty.
func partial(pattern string) bool {
	found, _ := filepath.Glob(pattern)
	for _, p := range found {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			return true
		}
	}
	return false
}

func paused(marker string) func() bool { return func() bool { return exists(marker) } }

// zerosZip is a zip whose dump.sql is n zero bytes: a long extraction from a small download.
var zerosZip = sync.OnceValue(func() func(t *testing.T, n int64) []byte {
	cache := map[int64][]byte{}
	var mu sync.Mutex
	return func(t *testing.T, n int64) []byte {
		mu.Lock()
		defer mu.Unlock()
		if z, ok := cache[n]; ok {
			return z
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.Create("dump.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(w, zeroReader{}, n); err != nil {
			t.Fatal(err)
		}
		zw.Close()
		cache[n] = buf.Bytes()
		return cache[n]
	}
})()

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func appendFile(t *testing.T, path, text string) {
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(text)
	fh.Close()
}

// A token in the source URL's query never shows: not on a command line (ps), not in the log,
// last-run.json or the mail, on a success and on a failure.
func tokenInTheURL(fail bool) fault {
	name, exit, check, cause := "a token in the source URL's query is on no command line and masked in log, state and mail (success)", exitOK, "", ""
	if fail {
		name, exit, check, cause = "a token in the source URL's query is masked in a failure's cause, detail and rerun", exitURL, "url", `the source answered HTTP 404`
	}
	return fault{name: name, changes: !fail, exit: exit, check: check, cause: cause,
		setup: func(f *fenv) {
			token := fmt.Sprintf("tok%dSECRET", time.Now().UnixNano())
			f.m.mu.Lock()
			f.m.secrets[token] = "the source URL's token"
			f.m.inEnv[token] = "ARCHIVE_URL"
			f.m.mu.Unlock()
			f.serveSource(func(w http.ResponseWriter, r *http.Request, n int) bool {
				if fail || r.URL.Query().Get("token") != token {
					http.NotFound(w, r)
					return true
				}
				return false
			})
			f.conf["source"]["url"] += "?token=" + token
			if !fail {
				f.mailConf("always")
			}
		},
		lines: []string{map[bool]string{false: `OK check=url .*url="?https://\S+\?token=\*\*\*`, true: `rerun=".*ARCHIVE_URL='https://\S+\?token=\*\*\*'`}[fail]}}
}
