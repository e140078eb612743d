package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var mailCauses = map[int]cause{
	40: {"the SMTP server is unreachable", "[mail] smtp_host", "check smtp_host and smtp_port, and any firewall"},
	41: {"the SMTP server's TLS certificate is not trusted", "[mail] ca_file", "for a private CA set ca_file to its PEM file; check smtp_host matches the certificate"},
	42: {"the SMTP server refused the login", "[mail] smtp_user", "check smtp_user and the password in smtp_password_file"},
	43: {"the SMTP server refused a recipient or the sender", "[mail] to", "check to and from"},
	44: {"the SMTP server does not offer TLS as configured", "[mail] transport", "use transport = smtps for implicit TLS (port 465), smtp with STARTTLS (port 587)"},
	45: {"the local MTA (sendmail) failed", "[mail] transport", "check the machine's mail system (mailq, /var/log/mail.log)"},
	46: {"sending the mail timed out", "[mail] timeout", "check the SMTP server and the network"},
}

// report mails the run's outcome when [mail] send asks for it. A mail that cannot be sent turns
// a success into a warning; it never hides a failure's own code.
func report(conf *Conf, log *logger, code int, start time.Time) int {
	m := conf.Mail
	outcome := outcomeOf(code)
	if m.Send == "never" || (m.Send == "failure" && outcome == "SUCCESS") || !m.Usable {
		return code
	}
	dir, err := os.MkdirTemp("", "archive-mail-")
	if err != nil {
		log.failed("mail", kv("cause", "cannot make a temporary folder: "+plainErr(err)))
		return mailFailed(code)
	}
	defer os.RemoveAll(dir)
	attach := ""
	if m.AttachLog == "always" || (m.AttachLog == "failure" && outcome != "SUCCESS") {
		attach = filepath.Join(dir, "archive-"+log.runID+".log")
		os.WriteFile(attach, []byte(strings.Join(log.lines, "\n")+"\n"), 0o600)
	}
	if f := sendMail(conf, dir, subject(conf, log, outcome), summary(log, outcome, code, start), attach); f != nil {
		log.failed("mail", kv("cause", f.cause), kv("detail", f.detail), kv("key", f.key), kv("hint", f.hint), kv("rerun", f.rerun))
		return mailFailed(code)
	}
	log.ok("mail", kv("to", m.To), kv("transport", m.Transport))
	return code
}

// sendMail sends one message with steps/mail.sh; dir is a private folder for its files.
func sendMail(conf *Conf, dir, subj, body, attach string) *failure {
	m := conf.Mail
	bodyFile := filepath.Join(dir, "body.txt")
	os.WriteFile(bodyFile, []byte(body), 0o600)
	env := []string{"ARCHIVE_MAIL_TO=" + m.To, "ARCHIVE_MAIL_FROM=" + m.From, "ARCHIVE_MAIL_SUBJECT=" + subj,
		"ARCHIVE_MAIL_BODY_FILE=" + bodyFile, "ARCHIVE_MAIL_TRANSPORT=" + m.Transport, "ARCHIVE_MAIL_TIMEOUT=" + secs(m.Timeout),
		"ARCHIVE_MAIL_WORK_DIR=" + dir, "ARCHIVE_MAIL_STARTTLS=" + yesNo(m.StartTLS)}
	for k, v := range map[string]string{"ATTACH": attach, "SMTP_HOST": m.Host, "SMTP_USER": m.User, "SMTP_PASSWORD_FILE": m.PasswordFile, "CA_FILE": m.CAFile} {
		if v != "" {
			env = append(env, "ARCHIVE_MAIL_"+k+"="+v)
		}
	}
	if m.Port != 0 {
		env = append(env, fmt.Sprintf("ARCHIVE_MAIL_SMTP_PORT=%d", m.Port))
	}
	rn := &runner{stepsDir: stepsDir(), tmpDir: dir}
	s := step{check: "mail", script: "mail.sh", env: env, timeout: m.Timeout + 15*time.Second, causes: mailCauses, timeoutKey: "[mail] timeout"}
	if res := rn.run(context.Background(), s); res.code != 0 || res.err != nil {
		f := rn.explain(s, res, exitFailure)
		// The body and the folder are gone after the run: a test message is the way to retry.
		f.rerun = "archive -c " + shellQuote(conf.Path) + " check --mail"
		return f
	}
	return nil
}

func mailFailed(code int) int {
	if code == exitOK {
		return exitWarning
	}
	return code
}

func outcomeOf(code int) string {
	switch code {
	case exitOK:
		return "SUCCESS"
	case exitWarning:
		return "WARNING"
	}
	return "FAILURE"
}

// subject fills the template of the outcome: {outcome} {name} {date} {host} {check} {cause}.
func subject(conf *Conf, log *logger, outcome string) string {
	host, _ := os.Hostname()
	vals := map[string]string{"outcome": outcome, "host": host, "date": "", "name": "", "check": "", "cause": ""}
	failed := false
	for _, e := range log.events {
		switch {
		case e.status == "START":
			vals["date"] = e.get("date")
		case e.check == "archive" && e.status == "OK":
			vals["name"] = e.get("name")
		// The first failure, else the first warning: a warning before it (a loose conf mode)
		// must not hide what failed.
		case e.status == "FAILED" && !failed || e.status == "WARNING" && vals["check"] == "":
			vals["check"], vals["cause"] = e.check, e.get("cause")
			failed = e.status == "FAILED"
		}
	}
	if len(vals["cause"]) > 80 {
		vals["cause"] = vals["cause"][:77] + "..."
	}
	t := conf.Mail.Subject[strings.ToLower(outcome)]
	for k, v := range vals {
		t = strings.ReplaceAll(t, "{"+k+"}", v)
	}
	return t
}

// summary is the body: what a person reads in ten seconds.
func summary(log *logger, outcome string, code int, start time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "archive: %s (exit %d) in %s\n\n", outcome, code, time.Since(start).Round(time.Second))
	var fail *event
	for i, e := range log.events {
		switch {
		case e.status == "START":
			fmt.Fprintf(&b, "Run %s of %s, conf %s\n\n", log.runID, e.get("date"), e.get("conf"))
		case e.check == "" || e.status == "INFO" && e.check != "prune":
			continue
		default:
			var facts []string
			for _, f := range e.facts {
				if f.k != "rerun" && f.k != "hint" && f.k != "detail" && f.k != "key" {
					facts = append(facts, f.k+"="+quoteValue(f.v))
				}
			}
			fmt.Fprintf(&b, "  %-8s %-12s %s\n", e.status, e.check, strings.Join(facts, " "))
		}
		if e.status == "FAILED" && fail == nil {
			fail = &log.events[i]
		}
	}
	if fail != nil {
		fmt.Fprintf(&b, "\nWhat failed: %s\n", fail.get("cause"))
		for _, k := range []string{"detail", "key", "hint", "rerun"} {
			if v := fail.get(k); v != "" {
				fmt.Fprintf(&b, "%-12s %s\n", map[string]string{"detail": "Tool said:", "key": "Conf key:", "hint": "What to do:", "rerun": "Rerun by hand:"}[k], v)
			}
		}
	}
	fmt.Fprintf(&b, "\nThe full log of this run is in the log file (grep run=%s).\n", log.runID)
	return b.String()
}
