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

// make deb builds a package that apt installs on this machine: the user and folders made by its
// postinst, the installed program finding its steps in /usr/lib/archive/steps and checking the
// local servers, as cron starts it; then apt-get purge leaves nothing but the system user, which
// Debian policy keeps.
func TestDebianPackageInstallsChecksAndPurges(t *testing.T) {
	need(t, "make", "dpkg-deb", "apt-get")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("installing the package needs root; CI runs as root")
		}
		t.Skip("installing the package needs root")
	}
	if exec.Command("dpkg-query", "-W", "-f", "${Status}", "archive").Run() == nil {
		exec.Command("apt-get", "purge", "-y", "-q", "archive").Run() // a package left by an earlier run
	}
	e := newEnv(t)
	out, err := exec.Command("make", "deb", "DEB_OUT="+filepath.Join(e.dir, "deb")).CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(e.dir, "deb", "archive_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v", debs)
	}
	apt := func(args ...string) {
		t.Helper()
		cmd := exec.Command("apt-get", append([]string{"-y", "-q"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	apt("install", "--no-install-recommends", debs[0])
	t.Cleanup(func() { exec.Command("apt-get", "purge", "-y", "-q", "archive").Run() })

	owned := map[string]string{"/var/lib/archive": "drwx------ archive", "/var/log/archive": "drwxr-x--- archive",
		"/etc/archive": "drwxr-x--- archive", "/etc/archive/archive.conf": "-rw------- archive",
		"/usr/bin/archive": "-rwxr-xr-x root", "/usr/lib/archive/steps/dest-s3.sh": "-rwxr-xr-x root",
		"/etc/cron.d/archive": "-rw-r--r-- root", "/lib/systemd/system/archive.timer": "-rw-r--r-- root"}
	for path, want := range owned {
		got, _ := exec.Command("stat", "-c", "%A %U", path).Output()
		if strings.TrimSpace(string(got)) != want {
			t.Errorf("%s: %q, want %q", path, strings.TrimSpace(string(got)), want)
		}
	}
	if conffiles, _ := exec.Command("dpkg-query", "-W", "-f", "${Conffiles}", "archive").Output(); !strings.Contains(string(conffiles), "/etc/archive/archive.conf") {
		t.Errorf("archive.conf is not a conffile: %q", conffiles)
	}

	// The cron line, with the test's conf in place of the system's: the installed program finds
	// its steps and checks the local source and server.
	vars, jobs := cronFile(t, "/etc/cron.d/archive")
	if len(jobs) != 2 || !strings.Contains(jobs[0], " archive  /usr/bin/archive -c /etc/archive/archive.conf") {
		t.Fatalf("cron.d: %q", jobs)
	}
	cmd := exec.Command("/bin/sh", "-c", "/usr/bin/archive -c "+e.writeConf()+" check")
	cmd.Dir, cmd.Env = "/", append(vars, "HOME=/root", "LOGNAME=root")
	out, err = cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "all OK") || !regexp.MustCompile(`(?m)^OK +steps +/usr/lib/archive/steps$`).Match(out) {
		t.Fatalf("archive check from the package: %v", err)
	}

	apt("purge", "archive")
	for _, gone := range []string{"/usr/bin/archive", "/usr/lib/archive", "/etc/archive", "/etc/cron.d/archive", "/etc/logrotate.d/archive",
		"/lib/systemd/system/archive.service", "/var/lib/archive", "/var/log/archive", "/usr/share/doc/archive"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("apt-get purge left %s", gone)
		}
	}
	if exec.Command("getent", "passwd", "archive").Run() != nil {
		t.Log("note: the system user archive is gone too (Debian policy would keep it)")
	}
}
