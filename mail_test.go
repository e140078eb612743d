package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mailpit is a real SMTP server (testdata/servers/mailpit.sh) whose HTTP API shows what arrived.
type mailpit struct{ env map[string]string }

func newMailpit(t *testing.T, dir, mode string) *mailpit {
	t.Helper()
	need(t, "mutt")
	if _, err := exec.LookPath("mailpit"); err != nil {
		home, _ := os.UserHomeDir()
		if _, err := os.Stat(filepath.Join(home, "go", "bin", "mailpit")); err != nil && os.Getenv("CI") != "true" {
			t.Skip("mailpit is not installed (go install github.com/axllent/mailpit@v1.33.1)")
		}
	}
	d := filepath.Join(dir, "mailpit-"+mode)
	if out, err := exec.Command("bash", "testdata/servers/mailpit.sh", "start", d, mode).CombinedOutput(); err != nil {
		t.Fatalf("cannot start mailpit: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("bash", "testdata/servers/mailpit.sh", "stop", d).Run() })
	return &mailpit{readEnvFile(t, filepath.Join(d, "env"))}
}

type message struct {
	ID          string
	Subject     string
	To          []struct{ Address string }
	Text        string
	Attachments []struct{ PartID, FileName string }
}

// messages returns what arrived, whole.
func (m *mailpit) messages(t *testing.T) []message {
	t.Helper()
	var list struct{ Messages []struct{ ID string } }
	m.get(t, "/api/v1/messages", &list)
	var out []message
	for _, s := range list.Messages {
		var full message
		m.get(t, "/api/v1/message/"+s.ID, &full)
		out = append(out, full)
	}
	return out
}

func (m *mailpit) get(t *testing.T, path string, v any) []byte {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + m.env["HTTP_PORT"] + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return body
}

func (e *env) mailTo(m *mailpit, transport string) {
	e.conf["mail"] = map[string]string{"send": "always", "to": "ops@example.org, dba@example.org", "from": "archive@db01.example.org",
		"transport": transport, "smtp_host": "127.0.0.1", "smtp_port": m.env["SMTP_PORT"], "smtp_user": m.env["SMTP_USER"],
		"smtp_password_file": m.env["SMTP_PASSWORD_FILE"], "ca_file": m.env["CA_FILE"], "timeout": "20"}
}

func TestMailSuccessOverSTARTTLSReachesEveryRecipient(t *testing.T) {
	e := newEnv(t)
	m := newMailpit(t, e.dir, "starttls")
	e.mailTo(m, "smtp")
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantLine(`OK check=mail`)
	msgs := m.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages arrived, want 1", len(msgs))
	}
	host, _ := os.Hostname()
	if want := "[archive] SUCCESS 20262811.tgz on " + host; msgs[0].Subject != want {
		t.Errorf("subject %q, want %q", msgs[0].Subject, want)
	}
	if len(msgs[0].To) != 2 {
		t.Errorf("recipients %v", msgs[0].To)
	}
	for _, want := range []string{"archive: SUCCESS (exit 0)", "OK       transfer", "name=20262811.tgz"} {
		if !strings.Contains(msgs[0].Text, want) {
			t.Errorf("body lacks %q:\n%s", want, msgs[0].Text)
		}
	}
	if len(msgs[0].Attachments) != 0 {
		t.Errorf("attach_log = failure attached the log to a success")
	}
	password, _ := os.ReadFile(m.env["SMTP_PASSWORD_FILE"])
	if pw := strings.TrimSpace(string(password)); strings.Contains(e.output, pw) || strings.Contains(msgs[0].Text, pw) {
		t.Error("the SMTP password is in the log or the mail")
	}
}

func TestMailFailureOverSMTPSCarriesTheCauseAndTheRunsLog(t *testing.T) {
	e := newEnv(t)
	m := newMailpit(t, e.dir, "tls")
	e.mailTo(m, "smtps")
	e.src.mode.Store("404")
	e.wantExit(e.run("--date", "2026-11-28"), exitURL)
	msgs := m.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages arrived, want 1", len(msgs))
	}
	if !strings.HasPrefix(msgs[0].Subject, "[archive] FAILED at url on ") || !strings.HasSuffix(msgs[0].Subject, ": the source answered HTTP 404") {
		t.Errorf("subject %q", msgs[0].Subject)
	}
	for _, want := range []string{"What failed: the source answered HTTP 404", "Conf key:", "[source] url", "Rerun by hand:"} {
		if !strings.Contains(msgs[0].Text, want) {
			t.Errorf("body lacks %q:\n%s", want, msgs[0].Text)
		}
	}
	if len(msgs[0].Attachments) != 1 {
		t.Fatalf("attachments: %v", msgs[0].Attachments)
	}
	att := m.get(t, fmt.Sprintf("/api/v1/message/%s/part/%s", msgs[0].ID, msgs[0].Attachments[0].PartID), nil)
	var runLines []string
	for _, l := range strings.Split(e.output, "\n") {
		if strings.Contains(l, " FAILED check=url ") || strings.Contains(l, " START ") {
			runLines = append(runLines, l)
		}
	}
	for _, l := range runLines {
		if !strings.Contains(string(att), l) {
			t.Errorf("attachment lacks the run's line %q", l)
		}
	}
}

func TestMailThatCannotBeSentTurnsSuccessIntoWarning(t *testing.T) {
	e := newEnv(t)
	m := newMailpit(t, e.dir, "starttls")
	e.mailTo(m, "smtp")
	wrong := filepath.Join(e.dir, "wrong-password")
	os.WriteFile(wrong, []byte("not-the-password\n"), 0o600)
	e.conf["mail"]["smtp_password_file"] = wrong
	e.wantExit(e.run("--date", "2026-11-28"), exitWarning)
	e.wantLine(`FAILED check=mail cause="the SMTP server refused the login"`)
	e.wantLine(`RESULT WARNING exit=3`)

	// An untrusted certificate: a CA that did not sign the server's.
	other := filepath.Join(e.dir, "other-ca")
	exec.Command("testdata/servers/mkcert.sh", other).Run()
	e.conf["mail"]["smtp_password_file"] = m.env["SMTP_PASSWORD_FILE"]
	e.conf["mail"]["ca_file"] = filepath.Join(other, "ca.pem")
	e.conf["mail"]["send"] = "failure"
	e.src.mode.Store("404")
	e.wantExit(e.run("--date", "2026-11-29"), exitURL) // the failure's own code stays
	e.wantLine(`FAILED check=mail cause="the SMTP server's TLS certificate is not trusted"`)
}

func TestMailSendFailureSendsNothingOnSuccess(t *testing.T) {
	e := newEnv(t)
	m := newMailpit(t, e.dir, "starttls")
	e.mailTo(m, "smtp")
	e.conf["mail"]["send"] = "failure"
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	time.Sleep(200 * time.Millisecond)
	if n := len(m.messages(t)); n != 0 {
		t.Fatalf("%d messages sent on a success with send = failure", n)
	}
}
