package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The samples of logs, mails and command output in the user guides come from real runs: each
// stands in a fenced block right after a marker line <!-- sample: NAME -->, and this test makes
// every NAME again on the loopback servers. It compares them, times, ids, ports, folders and
// checksums masked; with DOCS_SAMPLES=write (make docs) it writes the fresh output into the
// documents instead. A log line outside a marked block is refused: no sample can be typed by
// hand, nor go stale.

var sampleDocs = []string{guides.en, guides.fr}

var sampleMarker = regexp.MustCompile(`^<!-- sample: ([a-z0-9-]+) -->$`)

// logLine is what a line of archive's log looks like.
var logLine = regexp.MustCompile(`run=[0-9a-f]{8} (START|OK|FAILED|WARNING|SKIPPED|INFO|RESULT) `)

func TestDocSamplesComeFromRealRuns(t *testing.T) {
	samples := makeSamples(t)
	write := os.Getenv("DOCS_SAMPLES") == "write"
	for _, path := range sampleDocs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		var out []string
		seen := map[string]bool{}
		for i := 0; i < len(lines); i++ {
			out = append(out, lines[i])
			m := sampleMarker.FindStringSubmatch(lines[i])
			if m == nil {
				if logLine.MatchString(lines[i]) {
					t.Errorf("%s:%d: a log line outside a <!-- sample: NAME --> block (typed by hand?): %.80s", path, i+1, lines[i])
				}
				continue
			}
			name := m[1]
			got, ok := samples[name]
			if !ok {
				t.Errorf("%s:%d: no scenario makes the sample %q", path, i+1, name)
				continue
			}
			seen[name] = true
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
				t.Errorf("%s:%d: the sample %q marker is not followed by a fenced block", path, i+1, name)
				continue
			}
			end := i + 2
			for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
				end++
			}
			shown := strings.Join(lines[i+2:end], "\n")
			if write {
				out = append(out, lines[i+1])
				out = append(out, strings.Split(strings.TrimRight(got, "\n"), "\n")...)
				i = end - 1
				continue
			}
			if maskSample(shown) != maskSample(strings.TrimRight(got, "\n")) {
				t.Errorf("%s:%d: the sample %q is not what a run prints today; make docs writes it again.\nthe document:\n%s\na run:\n%s",
					path, i+1, name, maskSample(shown), maskSample(got))
			}
			out = append(out, lines[i+1:end]...)
			i = end - 1
		}
		var unused []string
		for name := range samples {
			if !seen[name] {
				unused = append(unused, name)
			}
		}
		sort.Strings(unused)
		if len(unused) > 0 {
			t.Errorf("%s shows no sample %v", path, unused)
		}
		if write {
			if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// maskSample hides what differs from one run or machine to the next.
func maskSample(s string) string {
	host, _ := os.Hostname()
	for _, m := range []struct{ re, with string }{
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d`, "TIME"},
		{`([Rr]un[= ]|archive-|grep run=)[0-9a-f]{8}`, "${1}RUN"},
		{`127\.0\.0\.1:\d+`, "127.0.0.1:PORT"},
		{`port \d+`, "port PORT"},
		{`/tmp/[A-Za-z0-9._-]+`, "/tmp/DIR"},
		{`duration=[0-9.]+m?s`, "duration=D"},
		{` in \d+s\b`, " in Ns"},
		{`last_modified="[^"]*"|last modified [A-Z][a-z]{2}, .* GMT`, "LAST_MODIFIED"},
		{`[0-9a-f]{12,64}`, "HEX"},
		{`[0-9a-z]{13}\.HEX\.part|archive-check-probe-[0-9a-z]+`, "PROBE"},
		{`(?m)^(OK +tool \S+ +).*$`, "${1}VERSION"},
		{`[0-9.]+ [KMGT]iB free`, "N free"},
		{`pid \d+`, "pid PID"},
		{`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`, "TIME"},
		{`\((\d+h)?(\d+m)?[\d.]+s ago\)|\(\d+ days? ago\)`, "(AGO)"},
		{`(?m), \d+s$`, ", Ns"},
		{`line \d+`, "line N"},
		{`\b` + regexp.QuoteMeta(host) + `\b`, "HOST"},
	} {
		s = regexp.MustCompile(m.re).ReplaceAllString(s, m.with)
	}
	return s
}

// makeSamples runs the scenarios of the samples on the loopback servers, and gives each one's
// output by name.
func makeSamples(t *testing.T) map[string]string {
	e := newEnv(t)
	m := newMailpit(t, e.dir, "starttls")
	e.mailTo(m, "smtp")
	e.conf["retention"]["keep_min"] = "3"
	out := map[string]string{}
	run := func(name string, want int, args ...string) {
		t.Helper()
		e.wantExit(e.run(args...), want)
		out[name] = strings.TrimRight(e.output, "\n")
	}

	e.wantExit(e.run("--date", "2026-11-28"), exitOK) // the first night, shown by make demo
	// The next night: a new dump, and on the server two archives past keep_days, one within it,
	// a checksum file and a file of someone else.
	for _, n := range []string{"20262009.tgz", "20260110.tgz", "20261002.tgz", "20261002.tgz.sha256", "notes.txt"} {
		p := filepath.Join(e.ssh.env["DEST"], n)
		os.WriteFile(p, []byte("an older archive"), 0o644)
		os.Chown(p, uidOf(t, e.ssh.env["DEST"]), -1)
	}
	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("second")}))
	run("next-night", exitOK, "--date", "2026-11-29")
	e.wantExit(e.run("--date", "2026-11-29"), exitWarning) // unchanged: what status shows
	run("status", exitWarning, "status")
	run("restore", exitOK, "restore", "--latest", "--to", filepath.Join(e.dir, "restored"))

	e.src.mode.Store("404")
	e.conf["mail"]["send"] = "failure"
	e.wantExit(e.run("--date", "2026-11-30"), exitURL) // its mail is shown
	e.src.mode.Store("ok")
	e.src.zip.Store(makeZip(t, map[string]string{"readme.txt": "maintenance"}))
	run("fail-zip", exitZipContent, "--date", "2026-11-30")
	out["fail-zip-line"] = firstLine(out["fail-zip"], "FAILED check=zip-content")
	delete(out, "fail-zip") // the operator sheet shows its FAILED line alone
	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("third")}))
	port := e.conf["destination"]["port"]
	e.conf["destination"]["port"] = "1"
	run("fail-connection", exitConnection, "--date", "2026-11-30")
	e.conf["destination"]["port"] = port

	msgs := m.messages(t)
	for _, msg := range msgs {
		mail := "From: archive@db01.example.org\nTo: " + strings.Join(recipients(msg), ", ") + "\nSubject: " + msg.Subject + "\n"
		if len(msg.Attachments) > 0 {
			mail += "Attachments: " + msg.Attachments[0].FileName + "\n"
		}
		mail += "\n" + strings.TrimRight(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "\n") // mailpit keeps a part's CRLF
		switch {
		case strings.Contains(msg.Subject, "SUCCESS 20262911.tgz"):
			out["mail-success"] = mail
		case strings.Contains(msg.Subject, "FAILED at url"):
			out["mail-failure"] = mail
		}
	}

	run("check", exitOK, "check", "--date", "2026-11-30", "--mail")
	e.conf["destination"]["port"] = "1"
	e.wantExit(e.run("check", "--date", "2026-11-30"), exitFailure)
	if !strings.Contains(e.output, "FAILED  destination") || !strings.Contains(e.output, "hint: [destination] host:") {
		t.Errorf("the guides tell a failed check's lines; a check with a wrong port printed:\n%s", e.output)
	}
	e.conf["destination"]["port"] = port
	run("list", exitOK, "list", "--date", "2026-11-30")
	// The scrub, after the first night's archive was truncated on the server.
	damaged := filepath.Join(e.ssh.env["DEST"], "20262811.tgz")
	body, _ := os.ReadFile(damaged)
	os.WriteFile(damaged, body[:len(body)/2], 0o644)
	run("verify", exitVerify, "verify")

	// A conf with four mistakes: a key given twice, a typo, http://, a word for a number.
	e.conf["source"]["url"] = strings.Replace(e.conf["source"]["url"], "https://", "http://", 1)
	e.conf["source"]["retries"] = "many"
	e.conf["retention"]["keep_dais"] = "30"
	path := e.writeConf()
	data, _ := os.ReadFile(path)
	withTwice := strings.Replace(string(data), "[destination]\n", "[destination]\nuser = archive\n", 1)
	e.conf["destination"]["user"] = e.ssh.env["USER"]
	os.WriteFile(path, []byte(withTwice), 0o600)
	cmd := exec.Command(filepath.Join(binDir, "archive"), "-c", path, "--date", "2026-11-30")
	cmd.Dir = "/"
	stdout, err := cmd.Output() // the log's lines; stderr says the same for cron's mail
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("a conf with four mistakes: %v, want exit %d", err, exitUsage)
	}
	out["fail-conf"] = strings.TrimRight(string(stdout), "\n")
	return out
}

func firstLine(s, contains string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, contains) {
			return l
		}
	}
	return ""
}

func recipients(msg message) []string {
	var to []string
	for _, a := range msg.To {
		to = append(to, a.Address)
	}
	return to
}
