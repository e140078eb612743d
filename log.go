package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// The log is one line per event, fields in a fixed order:
//
//	TIME RUNID STATUS check=ID key=value...
//
// so that `grep FAILED` finds every failure and the last line of a run states its outcome.

type fact struct{ k, v string }

func kv(k string, v any) fact { return fact{k, fmt.Sprint(v)} }

type logger struct {
	runID  string
	out    []io.Writer
	file   *os.File
	broken string   // why the log file could not be opened: the run must not go on unrecorded
	lost   string   // why a line could not be written to it (a full disk): the run fails
	lines  []string // this run's lines, for the mail's attachment; never read back
	// secrets are shown as *** wherever they would appear: the values in the source URL's query
	// (a token of a presigned or private link).
	secrets []string
}

// mask hides the secrets in s.
func (l *logger) mask(s string) string {
	for _, secret := range l.secrets {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

// querySecrets are the values of a URL's query worth hiding (four characters or more).
func querySecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	for _, vals := range u.Query() {
		for _, v := range vals {
			if len(v) >= 4 {
				out = append(out, v, url.QueryEscape(v))
			}
		}
	}
	return out
}

// openLog appends to [log] file; until the conf is read, and when the file cannot be opened, the
// lines still reach stderr, so a broken setup is never silent.
func openLog(conf *Conf) *logger {
	b := make([]byte, 4)
	rand.Read(b)
	l := &logger{runID: hex.EncodeToString(b), out: []io.Writer{os.Stdout}}
	if conf == nil || conf.LogFile == "" {
		l.out = []io.Writer{os.Stderr}
		return l
	}
	os.MkdirAll(filepath.Dir(conf.LogFile), 0o750)
	// Never through a link: it would make archive append to a file of someone else's choice.
	f, err := os.OpenFile(conf.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		l.out = []io.Writer{os.Stderr}
		l.broken = fmt.Sprintf("cannot open log file %q: %v", conf.LogFile, plainErr(err))
		return l
	}
	l.file = f
	l.out = append(l.out, f)
	return l
}

func (l *logger) close() {
	if l.file != nil {
		l.file.Close()
	}
}

func (l *logger) write(status, check string, facts []fact) {
	var b strings.Builder
	b.WriteString(time.Now().Format("2006-01-02T15:04:05-07:00"))
	b.WriteString(" run=" + l.runID + " " + status)
	if check != "" {
		b.WriteString(" check=" + check)
	}
	for _, f := range facts {
		if f.v == "" {
			continue
		}
		b.WriteString(" " + f.k + "=" + quoteValue(l.mask(f.v)))
	}
	line := b.String()
	l.lines = append(l.lines, line)
	for _, w := range l.out {
		// Only the file's errors count: a closed stdout (archive | head) is the reader's choice.
		if _, err := fmt.Fprintln(w, line); err != nil && w == io.Writer(l.file) && l.lost == "" {
			l.lost = fmt.Sprintf("cannot write the log file %q: %v", l.file.Name(), plainErr(err))
			fmt.Fprintln(os.Stderr, "archive: error: "+l.lost)
		}
	}
}

func (l *logger) info(check string, facts ...fact)    { l.write("INFO", check, facts) }
func (l *logger) ok(check string, facts ...fact)      { l.write("OK", check, facts) }
func (l *logger) failed(check string, facts ...fact)  { l.write("FAILED", check, facts) }
func (l *logger) warning(check string, facts ...fact) { l.write("WARNING", check, facts) }

// result writes the last line of the run and passes the exit code through.
func (l *logger) result(code int, start time.Time) int {
	l.write("RESULT "+outcomeOf(code), "", []fact{kv("exit", code), kv("duration", time.Since(start).Round(time.Millisecond))})
	return code
}

// quoteValue leaves simple values bare and quotes the rest, so a line splits on spaces.
func quoteValue(v string) string {
	if strings.ContainsAny(v, " \t\"=\\") || strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsGraphic(r) }) {
		return strconv.QuoteToGraphic(v)
	}
	return v
}
