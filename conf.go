package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"gopkg.in/ini.v1"
)

// confKey is one row of the conf table (conf_table.go).
type confKey struct {
	s, k, def string
	kind      kind
	req       bool     // required (when its protocols apply)
	lo, hi    int64    // integer and seconds: the range
	choices   []string // choice: the allowed values
	protos    []string // [destination]: the protocols that read it; nil: all
	field     string   // the Conf field it fills, "Mail.To" for a nested one
}

// kind is how a value is read and checked.
type kind int

const (
	text       kind = iota // one line of text
	httpsURL               // an https:// URL without user or password
	httpURL                // an http:// or https:// URL (monitoring on the local network)
	fileName               // a file name without folders
	localPath              // a path on this machine, relative to the conf's folder
	readable               // a local file that must be readable
	secretFile             // a readable file private to its owner (a key, a password)
	integer                // a whole number in lo..hi
	seconds                // a whole number of seconds in lo..hi
	size                   // a byte count with K, M, G or T
	port                   // 1..65535; empty: the protocol's or the transport's
	yesOrNo                // yes or no
	choice                 // one of choices
	nameFormat             // an archive name pattern (names.go)
	address                // one mail address
	addresses              // mail addresses separated by commas
)

func (ck confKey) appliesTo(protocol string) bool {
	return ck.protos == nil || slices.Contains(ck.protos, protocol)
}

// confError is one problem in the conf, located well enough for a technician to fix it.
type confError struct {
	section, key string
	line         int
	msg          string
}

func (e confError) Error() string {
	loc := fmt.Sprintf("[%s] %s", e.section, e.key)
	if e.key == "" {
		loc = fmt.Sprintf("[%s]", e.section)
	}
	if e.line > 0 {
		loc += fmt.Sprintf(" (line %d)", e.line)
	}
	return loc + ": " + e.msg
}

// defaultConfPaths are tried in order when -c is not given.
var defaultConfPaths = []string{"/etc/archive/archive.conf", "archive.conf"}

// findConf returns the conf path to use: the one given, else the first default that exists.
func findConf(given string) string {
	if given != "" {
		return given
	}
	for _, p := range defaultConfPaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return defaultConfPaths[0]
}

// loadConf reads and validates the conf at path. Every problem is reported, not just the first.
func loadConf(path string) (*Conf, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cannot use conf path %q: %v", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		var cause string
		switch {
		case errors.Is(err, fs.ErrNotExist):
			cause = "no such file (give its path with -c FILE)"
		case errors.Is(err, fs.ErrPermission):
			cause = "permission denied (the conf must be readable by the user running archive)"
		default:
			cause = err.Error()
		}
		return nil, fmt.Errorf("cannot read conf %q: %s", abs, cause)
	}
	if st, err := os.Stat(abs); err == nil && st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("conf %q is writable by group or others (mode %04o): whoever can write it decides what archive runs against; chmod go-w it", abs, st.Mode().Perm())
	}
	// Comments only on their own lines and no continuations: a value is data, so "a;b" or a path
	// with "#" stays whole. Quotes around a whole value are removed ("a b" is a b).
	f, err := ini.LoadSources(ini.LoadOptions{
		IgnoreInlineComment: true,
		IgnoreContinuation:  true,
		KeyValueDelimiters:  "=",
	}, data)
	if err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		return nil, fmt.Errorf("cannot parse conf %q: %s (lines are \"[section]\", \"key = value\" or comments starting with # or ;)", abs, msg)
	}

	lines, dups := keyLines(data)
	v := &validator{f: f, lines: lines, base: filepath.Dir(abs)}
	for _, d := range dups {
		v.errs = multierror.Append(v.errs, d)
	}
	v.known()
	c := &Conf{Path: abs}
	mailErrs := 0
	for _, ck := range confKeys {
		if ck.s == "destination" || ck.s == "retention" {
			continue
		}
		before := v.count()
		if s, ok := v.value(ck); ok {
			if val := v.check(ck, s); val != nil {
				setField(c, ck.field, val)
			}
		}
		if ck.s == "mail" {
			mailErrs += v.count() - before
		}
	}
	for _, sec := range v.destSections() {
		c.Dests = append(c.Dests, v.destination(sec, c.StateDir))
	}
	if c.MaxSize > 0 && c.MinSize > c.MaxSize {
		v.add("source", "min_size", "is larger than max_size")
	}
	before := v.count()
	v.mailRules(&c.Mail)
	c.Mail.Usable = mailErrs == 0 && v.count() == before

	if v.namesSecrets {
		if st, err := os.Stat(abs); err == nil && st.Mode().Perm()&0o077 != 0 {
			v.warn(fmt.Sprintf("conf %q is readable by group or others (mode %04o) and names secret files; chmod 600 it", abs, st.Mode().Perm()))
		}
	}
	c.Warnings = v.warnings
	return c, v.errs.ErrorOrNil()
}

// destNameRE is what NAME in [destination NAME] may be: it names a folder in state_dir too.
var destNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// destSections are the destination sections in the file's order, [destination] first; a conf
// without any reads as one empty [destination], so that its required keys are named.
func (v *validator) destSections() []string {
	var out []string
	seen, found := map[string]bool{}, false
	for _, s := range v.f.Sections() {
		name, ok := destName(s.Name())
		if !ok {
			continue
		}
		found = true
		switch {
		case name == defaultDest:
			v.add(s.Name(), "", "the name \""+defaultDest+"\" stands for [destination] itself; choose another")
		case name != "" && !destNameRE.MatchString(name):
			v.add(s.Name(), "", "a destination's name is 1 to 32 of a-z 0-9 _ -, starting with a letter or digit, such as [destination offsite]")
		case seen[name]:
			v.add(s.Name(), "", "is given twice")
		default:
			seen[name] = true
			if name == "" {
				out = append([]string{s.Name()}, out...)
			} else {
				out = append(out, s.Name())
			}
		}
	}
	if !found { // a conf without any: its required keys are named; a bad name alone is told alone
		out = []string{"destination"}
	}
	return out
}

// destName is NAME of a section [destination NAME] ("" for [destination]); false for another
// section.
func destName(section string) (string, bool) {
	if section == "destination" {
		return "", true
	}
	name, ok := strings.CutPrefix(section, "destination ")
	return strings.TrimSpace(name), ok
}

// destination reads one destination section: its protocol's rows, then the retention rows, each
// from the section when it gives the key, else from [retention].
func (v *validator) destination(sec, stateDir string) *Destination {
	name, _ := destName(sec)
	d := &Destination{Name: name, StateDir: stateDir}
	if name != "" {
		d.StateDir = filepath.Join(stateDir, "dest-"+name)
	}
	// Read here only to pick the rows that apply; its own row checks it.
	protocol := strings.TrimSpace(v.f.Section(sec).Key("protocol").MustString("sftp"))
	for _, ck := range confKeys {
		switch {
		case ck.s == "destination" && ck.appliesTo(protocol):
			ck.s = sec
		case ck.s == "retention" && v.f.Section(sec).HasKey(ck.k):
			ck.s = sec
		case ck.s != "retention":
			continue
		}
		if s, ok := v.value(ck); ok {
			if val := v.check(ck, s); val != nil {
				setField(d, ck.field, val)
			}
		}
	}
	if d.Port == 0 {
		d.Port = protocolOf(d.Protocol).port
	}
	return d
}

// confErrors lists the problems loadConf found, one per line, as the log and stderr show them.
func confErrors(err error) []string {
	var me *multierror.Error
	if !errors.As(err, &me) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(me.Errors))
	for _, e := range me.Errors {
		out = append(out, e.Error())
	}
	return out
}

// setField puts a checked value into the field a row names, of a *Conf or a *Destination.
func setField(target any, name string, val any) { confField(target, name).Set(reflect.ValueOf(val)) }

// confField is the field a row names ("Mail.To" for a nested one).
func confField(target any, name string) reflect.Value {
	f := reflect.ValueOf(target).Elem()
	for _, part := range strings.Split(name, ".") {
		f = f.FieldByName(part)
	}
	return f
}

// fieldText is a field as a step reads it: seconds, yes or no, a number ("" for 0).
func fieldText(target any, name string) string {
	f := confField(target, name)
	switch v := f.Interface().(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case time.Duration:
		return secs(v)
	case bool:
		return yesNo(v)
	case int:
		if v == 0 {
			return ""
		}
		return strconv.Itoa(v)
	}
	return f.String()
}

// keyLines maps "section.key" to its line number, so errors can point at the line to fix, and
// finds the keys given twice (go-ini would silently keep the last).
func keyLines(data []byte) (map[string]int, []confError) {
	lines := map[string]int{}
	var dups []confError
	section := ini.DefaultSection
	for i, l := range strings.Split(string(data), "\n") {
		n := i + 1
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			// A header may carry a comment after its "]", as go-ini allows.
			name, _, _ := strings.Cut(l[1:], "]")
			section = strings.TrimSpace(name)
			lines[section+"."] = n
		case strings.Contains(l, "="):
			key := strings.TrimSpace(l[:strings.Index(l, "=")])
			if first, ok := lines[section+"."+key]; ok {
				dups = append(dups, confError{section, key, n, fmt.Sprintf("is given twice (first on line %d); keep one", first)})
			}
			lines[section+"."+key] = n
		}
	}
	return lines, dups
}

type validator struct {
	f            *ini.File
	errs         *multierror.Error
	warnings     []string
	lines        map[string]int
	base         string
	namesSecrets bool
}

// add records a problem once: a [retention] key read for several destinations is one problem.
func (v *validator) add(section, key, msg string) {
	e := confError{section, key, v.lines[section+"."+key], msg}
	if v.errs != nil && slices.ContainsFunc(v.errs.Errors, func(x error) bool { return x == error(e) }) {
		return
	}
	v.errs = multierror.Append(v.errs, e)
}

func (v *validator) count() int {
	if v.errs == nil {
		return 0
	}
	return len(v.errs.Errors)
}

func (v *validator) warn(msg string) { v.warnings = append(v.warnings, msg) }

// known rejects sections and keys that have no row in the table: a typo must not silently fall
// back to a default.
func (v *validator) known() {
	for _, s := range v.f.Sections() {
		if s.Name() == ini.DefaultSection {
			for _, k := range s.Keys() {
				v.add(ini.DefaultSection, k.Name(), "is outside any [section]")
			}
			continue
		}
		section := s.Name()
		if _, ok := destName(section); ok {
			section = "destination"
		}
		if !slices.ContainsFunc(confKeys, func(ck confKey) bool { return ck.s == section }) {
			v.add(s.Name(), "", "unknown section (expected one of [source] [archive] [destination] [destination NAME] [retention] [verify] [log] [mail] [monitor])")
			continue
		}
		for _, k := range s.Keys() {
			if !slices.ContainsFunc(confKeys, func(ck confKey) bool {
				return ck.k == k.Name() && (ck.s == section || (section == "destination" && ck.s == "retention"))
			}) {
				v.add(s.Name(), k.Name(), "unknown key (a typo? see archive.conf for the keys of this section)")
			}
		}
	}
}

// value is the key's text, or its default; false for a value holding a control character, which
// is reported: a value is one line of data.
func (v *validator) value(ck confKey) (string, bool) {
	val := ck.def
	if v.f.Section(ck.s).HasKey(ck.k) {
		val = strings.TrimSpace(v.f.Section(ck.s).Key(ck.k).String())
	}
	if strings.ContainsFunc(val, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		v.add(ck.s, ck.k, "contains a control character or line break")
		return "", false
	}
	return val, true
}

// check reads one value by its row's kind and returns it typed for its Conf field, or nil when
// the field keeps its zero value.
func (v *validator) check(ck confKey, s string) any {
	bad := func(format string, a ...any) any {
		v.add(ck.s, ck.k, fmt.Sprintf(format, a...))
		return nil
	}
	if s == "" {
		if ck.req {
			return bad("is required")
		}
		switch ck.kind {
		case text, address, addresses, httpURL, readable, secretFile, localPath, httpsURL:
			return ""
		case port:
			return nil
		}
		return bad("is empty; remove the line to use the default (%s)", ck.def)
	}
	switch ck.kind {
	case httpsURL:
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return bad("is not a valid URL: %v", err)
		case u.Scheme != "https":
			return bad("must start with https:// (got %q): only verified TLS is used", u.Scheme+"://")
		case u.Host == "":
			return bad("has no host name")
		case u.User != nil:
			return bad("must not hold a user or password (it would show in the log and in ps)")
		}
	case httpURL:
		if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("must be an http:// or https:// address (got %q)", s)
		}
	case fileName:
		if strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
			return bad("must be a file name without folders, like dump.sql (got %q)", s)
		}
	case localPath, readable, secretFile:
		if !filepath.IsAbs(s) {
			s = filepath.Join(v.base, s)
		}
		if ck.kind == localPath {
			return s
		}
		fh, err := os.Open(s)
		if err != nil {
			return bad("cannot read %q: %v", s, plainErr(err))
		}
		st, _ := fh.Stat()
		fh.Close()
		// A trust file (known_hosts, a CA, a key or a password) decides whom archive talks to.
		if st.Mode().Perm()&0o022 != 0 {
			return bad("%q is writable by group or others (mode %04o): whoever can write it decides what archive trusts; chmod go-w it", s, st.Mode().Perm())
		}
		if ck.kind == secretFile {
			v.namesSecrets = true
			if st.Mode().Perm()&0o077 != 0 {
				v.warn(fmt.Sprintf("[%s] %s: %q is readable by group or others (mode %04o); chmod 600 it", ck.s, ck.k, s, st.Mode().Perm()))
			}
		}
	case integer, seconds, port:
		lo, hi := ck.lo, ck.hi
		if ck.kind == port {
			lo, hi = 1, 65535
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < lo || n > hi {
			return bad("must be a whole number from %d to %d (got %q)", lo, hi, s)
		}
		if ck.kind == seconds {
			return time.Duration(n) * time.Second
		}
		return int(n)
	case size:
		m := sizeRE.FindStringSubmatch(strings.ToUpper(s))
		if m == nil {
			return bad("must be a size such as 500, 20M or 64G (got %q)", s)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
		if err != nil || n < 1 || n > (1<<62)>>shift {
			return bad("must be a size from 1 byte to 4096P (got %q)", s)
		}
		return n << shift
	case yesOrNo:
		if s != "yes" && s != "no" {
			return bad("must be one of yes, no (got %q)", s)
		}
		return s == "yes"
	case choice:
		if !slices.Contains(ck.choices, s) {
			return bad("must be one of %s (got %q)", strings.Join(ck.choices, ", "), s)
		}
	case nameFormat:
		if err := checkNameFormat(s); err != nil {
			return bad("%s", err.Error())
		}
	case address, addresses:
		list := []string{s}
		if ck.kind == addresses {
			list = strings.Split(s, ",")
		}
		var clean []string
		for _, a := range list {
			a = strings.TrimSpace(a)
			if !mailAddress.MatchString(a) {
				return bad("%q is not a plain mail address like ops@example.org (several are separated by commas)", a)
			}
			clean = append(clean, a)
		}
		return strings.Join(clean, ", ")
	}
	return s
}

// mailAddress is a plain address: no display name, no mailto:, no header or mutt syntax.
var mailAddress = regexp.MustCompile(`^[A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+\.?[A-Za-z0-9-]*$`)

// mailRules are the [mail] requirements that depend on other keys.
func (v *validator) mailRules(m *mailConf) {
	if m.From == "" {
		host, _ := os.Hostname()
		m.From = "archive@" + host
	}
	if m.Send == "never" {
		return
	}
	// Required, unless a value was given and already refused.
	if m.To == "" && strings.TrimSpace(v.f.Section("mail").Key("to").String()) == "" {
		v.add("mail", "to", "is required when send is not never")
	}
	if m.Transport == "mta" {
		return
	}
	if m.Host == "" {
		v.add("mail", "smtp_host", "is required when transport is smtp or smtps")
	}
	if m.Port == 0 {
		m.Port = mailPorts[m.Transport]
	}
	if m.User != "" {
		if m.PasswordFile == "" {
			v.add("mail", "smtp_password_file", "is required when smtp_user is set")
		}
		if m.Transport == "smtp" && !m.StartTLS {
			v.add("mail", "starttls", "must be yes when smtp_user is set: the password is never sent in clear")
		}
	}
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMGT]?)i?B?$`)

// plainErr drops the "open /path:" prefix that the error message already names.
func plainErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
