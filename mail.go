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
	1:  {"the mail could not be sent, for a reason mutt names (detail=)", "[mail] transport", "read detail=, mutt's own words; archive check --mail sends a test"},
	40: {"the SMTP server is unreachable", "[mail] smtp_host", "check smtp_host and smtp_port, and any firewall"},
	41: {"the SMTP server's TLS certificate is not trusted", "[mail] ca_file", "for a private CA set ca_file to its PEM file; check smtp_host matches the certificate"},
	42: {"the SMTP server refused the login", "[mail] smtp_user", "check smtp_user and the password in smtp_password_file"},
	43: {"the SMTP server refused a recipient or the sender", "[mail] to", "check to and from"},
	44: {"the SMTP server does not offer TLS as configured", "[mail] transport", "use transport = smtps for implicit TLS (port 465), smtp with STARTTLS (port 587)"},
	45: {"the local MTA (sendmail) failed", "[mail] transport", "check the machine's mail system (mailq, /var/log/mail.log)"},
	46: {"sending the mail timed out", "[mail] timeout", "check the SMTP server and the network"},
}

// mailReport mails the run's outcome when [mail] send asks for it, and gives the exit code: a mail
// that cannot be sent turns a success into a warning; it never hides a failure's own code.
func mailReport(conf *Conf, log *logger, res *result, code int) int {
	m := conf.Mail
	outcome := outcomeOf(code)
	if m.Send == "never" || (m.Send == "failure" && outcome == "SUCCESS") || !m.Usable {
		return code
	}
	// In work_dir, under the prefix the next run sweeps: nothing a killed run wrote for the mail
	// stays (the password itself never touches the disk: mail.sh pipes it to mutt). /tmp only
	// when work_dir is what failed.
	dir, err := os.MkdirTemp(conf.WorkDir, workPrefix+"mail-")
	if err != nil {
		dir, err = os.MkdirTemp("", "archive-mail-")
	}
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
	if f := sendMail(conf, dir, subject(conf, res, outcome), summary(res, outcome, code), attach); f != nil {
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
	rn := newStepRunner(dir, nil)
	s := step{check: "mail", script: "mail.sh", env: env, timeout: m.Timeout + 15*time.Second, causes: mailCauses, timeoutKey: "[mail] timeout"}
	if res := rn.exec(context.Background(), s); res.code != 0 || res.err != nil {
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

// subject fills the template of the outcome: {outcome} {name} {date} {host} {check} {cause}. The
// check and cause are the first failure's, else the first warning's.
func subject(conf *Conf, res *result, outcome string) string {
	vals := map[string]string{"outcome": outcome, "host": hostname(), "date": res.Date, "name": res.Archive}
	if p := res.problem(); p != nil {
		vals["check"], vals["cause"] = p.Check, p.Cause
	}
	if len(vals["cause"]) > 80 {
		vals["cause"] = vals["cause"][:77] + "..."
	}
	t := map[string]string{"SUCCESS": conf.Mail.SubjectSuccess, "WARNING": conf.Mail.SubjectWarning}[outcome]
	if t == "" {
		t = conf.Mail.SubjectFailure
	}
	for k, v := range vals {
		t = strings.ReplaceAll(t, "{"+k+"}", v)
	}
	return t
}

func (r *result) problem() *problem {
	if r.Failure != nil {
		return r.Failure
	}
	return r.Warning
}

// summary is the body: what a person reads in ten seconds.
func summary(res *result, outcome string, code int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "archive: %s (exit %d) in %s\n\n", outcome, code, time.Since(res.Started).Round(time.Second))
	fmt.Fprintf(&b, "Run %s of %s, conf %s\n\n", res.RunID, res.Date, res.Conf)
	for _, c := range res.Checks {
		fmt.Fprintf(&b, "  %-8s %-12s %s\n", c.Status, c.Check, c.factsLine("rerun", "hint", "detail", "key"))
	}
	for _, name := range res.Pruned {
		fmt.Fprintf(&b, "  %-8s %-12s deleted=%s\n", "DELETED", "prune", name)
	}
	if len(res.Destinations) > 0 {
		fmt.Fprintf(&b, "\nDestinations:\n")
		for _, d := range res.Destinations {
			fmt.Fprintf(&b, "  %-12s %-10s %s %s\n", d.Name, d.Outcome, d.Where, d.Note)
		}
	}
	if f := res.Failure; f != nil {
		fmt.Fprintf(&b, "\nWhat failed: %s\n", f.Cause)
		for _, l := range [][2]string{{"Tool said:", f.Detail}, {"Conf key:", f.Key}, {"What to do:", f.Hint}, {"Rerun by hand:", f.Rerun}} {
			if l[1] != "" {
				fmt.Fprintf(&b, "%-12s %s\n", l[0], l[1])
			}
		}
	}
	fmt.Fprintf(&b, "\nThe full log of this run is in the log file (grep run=%s).\n", res.RunID)
	return b.String()
}
