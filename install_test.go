package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// make install into a DESTDIR lays out the expected files with the expected modes, and the
// installed program, started the way cron starts it, finds its steps and archives.
func TestInstallLaysOutFilesAndRunsUnderCronsEnvironment(t *testing.T) {
	need(t, "make", "install")
	e := newEnv(t)
	root := filepath.Join(e.dir, "root")
	out, err := exec.Command("make", "install", "DESTDIR="+root, "RUN_AS=root").CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for path, mode := range map[string]os.FileMode{
		"usr/local/bin/archive": 0o755, "usr/local/lib/archive/steps/fetch.sh": 0o755, "etc/archive": 0o750 | os.ModeDir,
		"etc/archive/archive.conf": 0o600, "var/lib/archive": 0o700 | os.ModeDir, "var/log/archive": 0o750 | os.ModeDir,
		"etc/cron.d/archive": 0o644, "etc/logrotate.d/archive": 0o644,
		"usr/local/share/archive/systemd/archive.service": 0o644, "usr/local/share/archive/systemd/archive.timer": 0o644,
		"usr/local/share/archive/systemd/archive-verify.service": 0o644, "usr/local/share/archive/systemd/archive-verify.timer": 0o644,
		"usr/local/lib/archive/steps/encrypt.sh": 0o755,
	} {
		st, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
		} else if st.Mode()&(os.ModeDir|os.ModePerm) != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), mode)
		}
	}
	timer, _ := os.ReadFile(filepath.Join(root, "usr/local/share/archive/systemd/archive.timer"))
	if !strings.Contains(string(timer), "Persistent=true") {
		t.Error("the timer is not Persistent")
	}

	// A second install keeps the technician's conf.
	conf := filepath.Join(root, "etc/archive/archive.conf")
	os.WriteFile(conf, []byte("# mine\n"), 0o600)
	exec.Command("make", "install", "DESTDIR="+root, "RUN_AS=root").Run()
	if data, _ := os.ReadFile(conf); string(data) != "# mine\n" {
		t.Error("make install overwrote an existing conf")
	}

	// The cron.d file: variables, then two job lines, the night and the weekly verify, each with
	// five time fields, a user and a command; both are run as cron would.
	vars, jobs := cronFile(t, filepath.Join(root, "etc/cron.d/archive"))
	if len(jobs) != 2 {
		t.Fatalf("cron.d holds %d job lines, want the night and the weekly verify: %q", len(jobs), jobs)
	}
	for i, job := range jobs {
		fields := strings.Fields(job)
		if len(fields) < 7 || !regexp.MustCompile(`^[0-9*,/-]+$`).MatchString(strings.Join(fields[:5], "")) || fields[5] != "root" {
			t.Fatalf("cron job line %q is not minute hour dom month dow user command", job)
		}
		cmdline := strings.Join(fields[6:], " ")
		if !strings.Contains(cmdline, "/usr/local/bin/archive -c /etc/archive/archive.conf") || (i == 1) != strings.Contains(cmdline, " verify") {
			t.Fatalf("cron runs %q", cmdline)
		}
		if i == 0 {
			cmdline += " --date 2026-11-28"
		}
		runCron(t, e, root, vars, cmdline)
	}
	uninstallRemoves(t, root, conf)
}

// runCron runs a cron command as cron would: its own small environment, from /, with the
// installed binary and a test conf in place of the system's.
func runCron(t *testing.T, e *env, root string, vars []string, cmdline string) {
	cmdline = strings.Replace(cmdline, "/usr/local/bin/archive", filepath.Join(root, "usr/local/bin/archive"), 1)
	cmdline = strings.Replace(cmdline, "/etc/archive/archive.conf", e.writeConf(), 1)
	cmdline = strings.Replace(cmdline, " >/dev/null", "", 1)
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Dir = "/"
	cmd.Env = append(vars, "HOME=/root", "LOGNAME=root")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the cron command failed: %v", err)
	}
	if !strings.Contains(string(out), "RESULT SUCCESS") {
		t.Fatal("no successful run under cron's environment")
	}
}

func uninstallRemoves(t *testing.T, root, conf string) {
	out, err := exec.Command("make", "uninstall", "DESTDIR="+root).CombinedOutput()
	if err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	for _, gone := range []string{"usr/local/bin/archive", "usr/local/lib/archive", "etc/cron.d/archive"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("uninstall left %s", gone)
		}
	}
	if _, err := os.Stat(conf); err != nil {
		t.Error("uninstall removed the conf")
	}
}

func cronFile(t *testing.T, path string) (vars []string, jobs []string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case regexp.MustCompile(`^[A-Z_]+=`).MatchString(l):
			vars = append(vars, l)
		default:
			jobs = append(jobs, l)
		}
	}
	return vars, jobs
}
