package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the built binary against a real HTTPS server and a real OpenSSH sshd
// on loopback, and look at what an operator sees: exit code, log lines, files on the server.

var binDir string // holds the built archive and a link to steps/

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "archive-bin-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "archive"), ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build archive:", err)
		os.Exit(1)
	}
	wd, _ := os.Getwd()
	os.Symlink(filepath.Join(wd, "steps"), filepath.Join(dir, "steps"))
	binDir = dir
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "ARCHIVE_") {
			os.Unsetenv(strings.SplitN(e, "=", 2)[0])
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need skips a test whose server is missing, except in CI, where a skip would hide a gap.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; CI must run every real-server test (.ci/run installs it)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// source is the HTTPS server publishing the dump. mode picks a fault.
type source struct {
	srv    *httptest.Server
	zip    atomic.Value // []byte
	mode   atomic.Value // string
	hits   atomic.Int32
	caFile string
}

func newSource(t *testing.T, dir string) *source {
	s := &source{}
	s.mode.Store("ok")
	s.zip.Store([]byte(nil))
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.hits.Add(1)
		body := s.zip.Load().([]byte)
		switch s.mode.Load().(string) {
		case "404":
			http.NotFound(w, r)
			return
		case "500-then-ok":
			if r.Method == http.MethodGet && n == 2 { // the probe (a GET too), then the first download
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
		case "stall": // the download stalls halfway; the url check, a range of one byte, does not
			if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
				return
			}
		case "html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<!DOCTYPE html><html><body>Maintenance</body></html>")
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		http.ServeContent(w, r, "dump.zip", time.Now(), bytes.NewReader(body))
	}))
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.caFile = filepath.Join(dir, "source-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *source) url() string { return s.srv.URL + "/exports/dump.zip" }

// makeZip builds a zip holding the given members.
func makeZip(t *testing.T, members map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range members {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dump(seed string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE customers (id INT, name TEXT);\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "INSERT INTO customers VALUES (%d, '%s-%d');\n", i, seed, i*7)
	}
	return b.String()
}

// sshServer is a throwaway sshd started by testdata/servers/sshd.sh.
type sshServer struct {
	dir string
	env map[string]string
}

func newSSHD(t *testing.T, dir string) *sshServer {
	t.Helper()
	need(t, "sshd", "ssh", "sftp")
	s := &sshServer{dir: filepath.Join(dir, "sshd")}
	out, err := exec.Command("testdata/servers/sshd.sh", "start", s.dir).CombinedOutput()
	if err != nil {
		t.Fatalf("cannot start sshd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("testdata/servers/sshd.sh", "stop", s.dir).Run() })
	s.env = readEnvFile(t, filepath.Join(s.dir, "env"))
	return s
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseFacts(string(data))
}

// remoteNames lists the archive folder as the server has it.
func (s *sshServer) remoteNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(s.env["DEST"])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// env is one test's world: a source, an archive server, a conf, and the folders they use.
type env struct {
	t      *testing.T
	dir    string
	src    *source
	ssh    *sshServer
	conf   map[string]map[string]string
	output string
	path   string // PATH for the run, when not the test's own
}

func newEnv(t *testing.T) *env {
	t.Helper()
	need(t, "curl", "tar", "sha256sum")
	// Under a world-readable folder: sshd's user (not root) must reach the archive folder.
	dir, err := os.MkdirTemp("", "archive-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, dir: dir, src: newSource(t, dir), ssh: newSSHD(t, dir)}
	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("first")}))
	e.conf = map[string]map[string]string{
		"source": {"url": e.src.url(), "expected_file": "dump.sql", "ca_file": e.src.caFile,
			"timeout": "10", "retries": "1", "retry_delay": "0"},
		"archive": {"work_dir": "work", "state_dir": "state"},
		"destination": {"protocol": "sftp", "host": "127.0.0.1", "port": e.ssh.env["PORT"], "user": e.ssh.env["USER"],
			"path": e.ssh.env["DEST"], "identity_file": e.ssh.env["IDENTITY_FILE"], "known_hosts": e.ssh.env["KNOWN_HOSTS"], "timeout": "10"},
		"retention": {"keep_days": "30", "keep_min": "3"},
		"log":       {"file": "archive.log"},
	}
	return e
}

func (e *env) writeConf() string {
	var b strings.Builder
	sections := []string{"source", "archive", "destination", "retention", "log", "mail", "monitor"}
	var others []string // [destination NAME], [verify]: after the usual ones, in name order
	for sec := range e.conf {
		if !slices.Contains(sections, sec) {
			others = append(others, sec)
		}
	}
	sort.Strings(others)
	for _, sec := range append(sections, others...) {
		if e.conf[sec] == nil {
			continue
		}
		fmt.Fprintf(&b, "[%s]\n", sec)
		for k, v := range e.conf[sec] {
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	}
	// Written aside, then renamed: a run started just before reads a whole conf, never a
	// truncated one.
	path := filepath.Join(e.dir, "archive.conf")
	if err := os.WriteFile(path+".new", []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// run runs the binary with the conf, from another folder, and returns its exit code.
func (e *env) run(args ...string) int {
	e.t.Helper()
	conf := e.writeConf()
	cmd := exec.Command(filepath.Join(binDir, "archive"), append([]string{"-c", conf}, args...)...)
	cmd.Dir = "/"
	if e.path != "" {
		cmd.Env = append(os.Environ(), "PATH="+e.path)
	}
	out, err := cmd.CombinedOutput()
	e.output = string(out)
	e.t.Logf("archive %s:\n%s", strings.Join(args, " "), out)
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	e.t.Fatalf("cannot run archive: %v", err)
	return -1
}

func (e *env) wantExit(got, want int) {
	e.t.Helper()
	if got != want {
		e.t.Fatalf("exit code %d, want %d", got, want)
	}
}

// wantLine asserts a line of the last run's output matches the pattern.
func (e *env) wantLine(pattern string) {
	e.t.Helper()
	re := regexp.MustCompile(pattern)
	sc := bufio.NewScanner(strings.NewReader(e.output))
	for sc.Scan() {
		if re.MatchString(sc.Text()) {
			return
		}
	}
	e.t.Fatalf("no line matches %q", pattern)
}

func (e *env) noLine(pattern string) {
	e.t.Helper()
	if regexp.MustCompile(pattern).MatchString(e.output) {
		e.t.Fatalf("a line matches %q, none should", pattern)
	}
}

func (e *env) statePath() string { return filepath.Join(e.dir, "state", stateFile) }

func (e *env) stateContent() string {
	data, _ := os.ReadFile(e.statePath())
	return string(data)
}

// workClean asserts the run left nothing in work_dir.
func (e *env) workClean() {
	e.t.Helper()
	entries, _ := os.ReadDir(filepath.Join(e.dir, "work"))
	if len(entries) > 0 {
		e.t.Fatalf("work_dir not clean: %v", entries)
	}
}

// sqlInArchive extracts the one member of a .tgz on the server.
func sqlInArchive(t *testing.T, path string) (string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(tr)
	return h.Name, string(body)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestRunArchivesSkipsUnchangedAndArchivesChangedDump(t *testing.T) {
	e := newEnv(t)
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	for _, id := range checkIDs {
		e.wantLine(` OK check=` + id + ` `)
	}
	e.wantLine(`RESULT SUCCESS exit=0`)
	name, body := sqlInArchive(t, filepath.Join(e.ssh.env["DEST"], "20262811.tgz"))
	if name != "dump.sql" || body != dump("first") {
		t.Fatalf("archive holds %q with other content", name)
	}
	if !strings.Contains(e.stateContent(), "sha256="+sha(dump("first"))) {
		t.Fatalf("state not recorded: %s", e.stateContent())
	}
	e.workClean()

	e.wantExit(e.run("--date", "2026-11-29"), exitWarning)
	e.wantLine(`WARNING check=changed cause="the dump is the same`)
	e.wantLine(`SKIPPED check=transfer`)
	e.wantLine(`RESULT WARNING exit=3`)
	if names := e.ssh.remoteNames(t); strings.Join(names, ",") != "20262811.tgz,20262811.tgz.sha256" {
		t.Fatalf("an unchanged dump uploaded something: %v", names)
	}

	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("second")}))
	e.conf["archive"]["name_format"] = "%Y%m%d"
	e.wantExit(e.run("--date", "2026-11-30"), exitOK)
	if _, body := sqlInArchive(t, filepath.Join(e.ssh.env["DEST"], "20261130.tgz")); body != dump("second") {
		t.Fatal("the changed dump was not archived")
	}
	e.workClean()
}

func TestRunPrunesByNameDateAndKeepsKeepMin(t *testing.T) {
	e := newEnv(t)
	dest := e.ssh.env["DEST"]
	// Old archives with dates in their names, plus files retention must never touch.
	for _, n := range []string{"20260110.tgz", "20260210.tgz", "20260920.tgz", "20261001.tgz", "notes.txt", "20261301.tgz", "backup-20260101.tgz"} {
		p := filepath.Join(dest, n)
		os.WriteFile(p, []byte("old"), 0o644)
		os.Chown(p, uidOf(t, dest), -1)
	}
	e.conf["archive"]["name_format"] = "%Y%m%d"
	e.conf["retention"]["keep_days"] = "30"
	e.conf["retention"]["keep_min"] = "3"
	e.wantExit(e.run("--date", "2026-11-08"), exitOK)
	// Kept: today's, and the next two newest (keep_min 3), although older than keep_days.
	got := strings.Join(e.ssh.remoteNames(t), ",")
	want := "20260920.tgz,20261001.tgz,20261108.tgz,20261108.tgz.sha256,20261301.tgz,backup-20260101.tgz,notes.txt"
	if got != want {
		t.Fatalf("after prune the server holds %s, want %s", got, want)
	}
	e.wantLine(`INFO check=prune deleted=20260110.tgz date=2026-01-10 reason="302 days old, past keep_days = 30"`)
	e.wantLine(`INFO check=prune deleted=20260210.tgz`)
	e.wantLine(`OK check=prune kept=3 deleted=2 .* ignored=3`)

	// 40 days later with a new dump: only keep_min counts now, newest first.
	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("later")}))
	e.wantExit(e.run("--date", "2026-12-18"), exitOK)
	got = strings.Join(e.ssh.remoteNames(t), ",")
	want = "20261001.tgz,20261108.tgz,20261108.tgz.sha256,20261218.tgz,20261218.tgz.sha256,20261301.tgz,backup-20260101.tgz,notes.txt"
	if got != want {
		t.Fatalf("after the second prune the server holds %s, want %s", got, want)
	}
}

func uidOf(t *testing.T, path string) int {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

func TestRunHistoryNoKeepsOnlyTheNewest(t *testing.T) {
	e := newEnv(t)
	e.conf["retention"]["history"] = "no"
	e.wantExit(e.run("--date", "2026-11-01"), exitOK)
	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("next")}))
	e.wantExit(e.run("--date", "2026-11-02"), exitOK)
	if got := strings.Join(e.ssh.remoteNames(t), ","); got != "20260211.tgz,20260211.tgz.sha256" {
		t.Fatalf("history = no left %s", got)
	}
	e.wantLine(`INFO check=prune deleted=20260111.tgz .*reason="history = no keeps only the newest"`)
	e.wantLine(`INFO check=prune deleted=20260111.tgz.sha256 reason="the checksum file of 20260111.tgz"`)
}

// Each of the seven checks failing once: its exit code, a FAILED line naming it, the state left
// alone, nothing under a final name on the server, and the work folder empty.
func TestRunEachCheckFailureIsReportedAndLeavesNothingBehind(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env)
		exit  int
		line  string
	}{
		{"url 404", func(e *env) { e.src.mode.Store("404") }, exitURL,
			`FAILED check=url cause="the source answered HTTP 404" .*key="\[source\] url"`},
		{"url connection refused", func(e *env) { e.conf["source"]["url"] = "https://127.0.0.1:" + closedPort(t) + "/dump.zip" }, exitURL,
			`FAILED check=url cause="cannot connect to the source server`},
		{"download stalls", func(e *env) {
			e.src.mode.Store("stall")
			e.conf["source"]["timeout"] = "2"
			e.conf["source"]["retries"] = "0"
		}, exitDownload, `FAILED check=download cause="the source did not answer in time" .*key="\[source\] timeout"`},
		{"download html page", func(e *env) { e.src.mode.Store("html") }, exitZipContent,
			`FAILED check=zip-content cause="the downloaded file is not a zip" detail=".*web page`},
		{"zip corrupt", func(e *env) { e.src.zip.Store([]byte("PK\x03\x04 this is no zip at all")) }, exitZipContent,
			`FAILED check=zip-content cause="the zip is corrupt or truncated"`},
		{"zip without the expected file", func(e *env) {
			e.src.zip.Store(makeZip(t, map[string]string{"other.sql": "x", "backup/dump.sql": dump("x")}))
		}, exitZipContent, `FAILED check=zip-content cause="the zip does not hold the expected file" detail=".*found: backup/dump.sql`},
		{"unchanged with on_unchanged=fail", func(e *env) {
			e.conf["archive"]["on_unchanged"] = "fail"
			os.MkdirAll(filepath.Join(e.dir, "state"), 0o700)
			writeState(filepath.Join(e.dir, "state"), state{SHA256: sha(dump("first")), Date: "2026-11-27", Name: "20262711.tgz"})
		}, exitChanged, `FAILED check=changed cause="the dump is the same as the one archived on 2026-11-27" .*key="\[archive\] on_unchanged"`},
		{"work dir unwritable", func(e *env) {
			os.WriteFile(filepath.Join(e.dir, "afile"), nil, 0o600)
			e.conf["archive"]["work_dir"] = "afile/work"
		}, exitArchive, `FAILED check=archive cause="cannot create work_dir .*not a directory" key="\[archive\] work_dir"`},
		{"wrong host key", func(e *env) {
			os.WriteFile(e.ssh.env["KNOWN_HOSTS"], []byte("[127.0.0.1]:"+e.ssh.env["PORT"]+" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o644)
		}, exitConnection, `FAILED check=connection cause="the archive server is not trusted .*key="\[destination\] known_hosts"`},
		{"wrong key", func(e *env) {
			key := filepath.Join(e.dir, "other_key")
			exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).Run()
			e.conf["destination"]["identity_file"] = key
		}, exitConnection, `FAILED check=connection cause="the archive server refused the login"`},
		{"remote path not writable", func(e *env) {
			ro := filepath.Join(e.ssh.env["DEST"], "readonly")
			os.Mkdir(ro, 0o755) // owned by root: the ssh user cannot write there
			e.conf["destination"]["path"] = ro
		}, exitTransfer, `FAILED check=transfer cause="permission denied on the archive server" .*rerun=".*dest-sftp.sh put `},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(e)
			before := e.stateContent()
			e.wantExit(e.run("--date", "2026-11-28"), tc.exit)
			e.wantLine(tc.line)
			e.wantLine(`RESULT FAILURE exit=` + fmt.Sprint(tc.exit))
			if e.stateContent() != before {
				t.Fatalf("state changed on a failed run:\n%s", e.stateContent())
			}
			for _, n := range e.ssh.remoteNames(t) {
				if strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".part") {
					t.Fatalf("the server holds %s after a failed run", n)
				}
			}
			e.workClean()
		})
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return fmt.Sprint(port)
}

func TestRunRetriesATransientServerError(t *testing.T) {
	e := newEnv(t)
	e.src.mode.Store("500-then-ok")
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantLine(`OK check=download size=\d+ attempts=2 retried_after="HTTP 500"`)
}

func TestRunWhileAnotherHoldsTheLockExits4(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Join(e.dir, "state"), 0o700)
	f, err := os.OpenFile(filepath.Join(e.dir, "state", "archive.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	e.wantExit(e.run(), exitLocked)
	e.wantLine(`FAILED check=lock cause="another archive run is active`)
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
}

func TestRunRecoversFromAKilledRunsLeftovers(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Join(e.dir, "work", "run-deadbeef"), 0o700)
	os.WriteFile(filepath.Join(e.dir, "work", "run-deadbeef", "source.zip"), []byte("half"), 0o600)
	part := filepath.Join(e.ssh.env["DEST"], "20262811.tgz.part")
	os.WriteFile(part, []byte("half"), 0o644)
	os.Chown(part, uidOf(t, e.ssh.env["DEST"]), -1)
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantLine(`INFO check=cleanup removed=.*run-deadbeef reason="left by an interrupted run"`)
	e.wantLine(`INFO check=transfer removed=20262811.tgz.part`)
	if got := strings.Join(e.ssh.remoteNames(t), ","); got != "20262811.tgz,20262811.tgz.sha256" {
		t.Fatalf("server holds %s", got)
	}
	e.workClean()
}

func TestRunStoppedBySIGTERMLogsAFailureAndCleansUp(t *testing.T) {
	e := newEnv(t)
	e.src.mode.Store("stall")
	cmd := exec.Command(filepath.Join(binDir, "archive"), "-c", e.writeConf())
	var out lockedBuffer // read while the run writes it
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !strings.Contains(out.String(), "OK check=url"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // inside the download now
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	e.output = out.String()
	t.Log(e.output)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("exit %v, want %d", err, exitFailure)
	}
	e.wantLine(`FAILED check=download cause="the run was interrupted by a signal`)
	e.wantLine(`RESULT FAILURE exit=1`)
	e.workClean()
}

func TestRunConfErrorsAreAllReportedWithExit2(t *testing.T) {
	e := newEnv(t)
	e.conf["source"]["url"] = "http://example.org/dump.zip"
	e.conf["source"]["retries"] = "many"
	e.conf["archive"]["name_fromat"] = "%Y"
	e.wantExit(e.run(), exitUsage)
	e.wantLine(`FAILED check=conf cause="\[source\] url \(line \d+\): must start with https://`)
	e.wantLine(`FAILED check=conf cause="\[source\] retries \(line \d+\): must be a whole number`)
	e.wantLine(`FAILED check=conf cause="\[archive\] name_fromat \(line \d+\): unknown key`)
	e.noLine(`panic|goroutine`)
}

func TestRunStopsWhenTheLogCannotBeOpened(t *testing.T) {
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "afile"), nil, 0o600)
	e.conf["log"]["file"] = "afile/archive.log"
	e.wantExit(e.run("--date", "2026-11-28"), exitUsage)
	e.wantLine(`FAILED check=log cause="cannot open log file .*not a directory" key="\[log\] file"`)
	e.noLine(`check=url`)
}

// An empty [log] file keeps the lines on standard error alone, as archive.conf and the guides
// say (systemd's journal keeps them): the night runs as usual.
func TestRunWithAnEmptyLogFileWritesToStandardErrorOnly(t *testing.T) {
	e := newEnv(t)
	e.conf["log"]["file"] = ""
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantLine(`RESULT SUCCESS exit=0`)
	if _, err := os.Stat(filepath.Join(e.dir, "archive.log")); err == nil {
		t.Error("a log file was written although [log] file is empty")
	}
}

// The rerun= of a failed check runs as written, in a private folder of its own: the step before
// it first (the download), then the failed step, with the same exit code and words.
func TestRerunLineRepeatsTheFailedStepInAPrivateFolder(t *testing.T) {
	e := newEnv(t)
	e.src.zip.Store(makeZip(t, map[string]string{"other.sql": "x"}))
	e.wantExit(e.run("--date", "2026-11-28"), exitZipContent)
	m := regexp.MustCompile(`FAILED check=zip-content .* rerun=("(?:[^"\\]|\\.)*")`).FindStringSubmatch(e.output)
	if m == nil {
		t.Fatal("no rerun= on the FAILED line")
	}
	line, err := strconv.Unquote(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, `d=$(mktemp -d /tmp/archive-rerun.XXXXXX) && `) || strings.Contains(line, `\"`) || strings.Contains(line, "/tmp/archive-rerun/") || strings.Contains(line, e.dir+"/work") {
		t.Fatalf("the rerun does not work in a private folder of its own: %s", line)
	}
	out, err := exec.Command("bash", "-c", line).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 22 || !strings.Contains(string(out), `holds no member named "dump.sql"`) {
		t.Fatalf("the rerun gave %v:\n%s", err, out)
	}
}
