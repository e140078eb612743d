package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"gopkg.in/ini.v1"
)

// confKey is one key the conf may hold. The table below is the only list of keys: validation,
// defaults, the unknown-key check and the documentation test all read it.
type confKey struct {
	section, name, def string
	// path: a local path, taken relative to the conf file's folder.
	path bool
}

var confKeys = []confKey{
	{"source", "url", "", false},
	{"source", "expected_file", "", false},
	{"source", "ca_file", "", true},
	{"source", "timeout", "600", false},
	{"source", "retries", "2", false},
	{"source", "retry_delay", "10", false},
	{"source", "min_size", "1", false},
	{"source", "max_size", "64G", false},
	{"source", "conditional", "yes", false},

	{"archive", "name_format", "%Y%d%m", false},
	{"archive", "work_dir", "/var/lib/archive/work", true},
	{"archive", "state_dir", "/var/lib/archive", true},
	{"archive", "on_unchanged", "skip", false},
	{"archive", "compressor", "auto", false},
	{"archive", "compression_level", "6", false},
	{"archive", "timeout", "7200", false},
	{"archive", "max_unchanged_days", "3", false},
	{"archive", "allow_root", "yes", false},

	{"destination", "protocol", "sftp", false},
	{"destination", "host", "", false},
	{"destination", "port", "", false},
	{"destination", "user", "", false},
	{"destination", "path", ".", false},
	{"destination", "identity_file", "", true},
	{"destination", "known_hosts", "", true},
	{"destination", "password_file", "", true},
	{"destination", "url", "", false},
	{"destination", "share", "", false},
	{"destination", "domain", "", false},
	{"destination", "smb_protocol", "SMB3", false},
	{"destination", "ca_file", "", true},
	{"destination", "verify", "size", false},
	{"destination", "require_mount", "yes", false},
	{"destination", "timeout", "30", false},
	{"destination", "transfer_timeout", "7200", false},

	{"retention", "history", "yes", false},
	{"retention", "keep_days", "30", false},
	{"retention", "keep_min", "7", false},

	{"log", "file", "/var/log/archive/archive.log", true},

	{"mail", "send", "never", false},
	{"mail", "to", "", false},
	{"mail", "from", "", false},
	{"mail", "subject_success", "[archive] SUCCESS {name} on {host}", false},
	{"mail", "subject_warning", "[archive] WARNING at {check} on {host}: {cause}", false},
	{"mail", "subject_failure", "[archive] FAILED at {check} on {host}: {cause}", false},
	{"mail", "attach_log", "failure", false},
	{"mail", "transport", "mta", false},
	{"mail", "smtp_host", "", false},
	{"mail", "smtp_port", "", false},
	{"mail", "starttls", "yes", false},
	{"mail", "smtp_user", "", false},
	{"mail", "smtp_password_file", "", true},
	{"mail", "ca_file", "", true},
	{"mail", "timeout", "60", false},

	{"monitor", "ping_url", "", false},
	{"monitor", "ca_file", "", true},
	{"monitor", "timeout", "10", false},
}

// Conf is the validated configuration. Durations are whole seconds in the file.
type Conf struct {
	Path string // the conf file itself

	URL          string
	ExpectedFile string
	SourceCA     string
	Timeout      time.Duration
	Retries      int
	RetryDelay   time.Duration
	MinSize      int64
	MaxSize      int64
	Conditional  bool // send the last archived zip's ETag and Last-Modified; 304 means unchanged

	NameFormat       string
	WorkDir          string
	StateDir         string
	OnUnchanged      string
	Compressor       string
	CompressionLevel int
	PackTimeout      time.Duration
	MaxUnchangedDays int
	AllowRoot        bool

	Protocol        string
	Host            string
	Port            int
	User            string
	DestPath        string
	IdentityFile    string
	KnownHosts      string
	PasswordFile    string
	DestURL         string
	Share           string
	Domain          string
	SMBProtocol     string
	DestCA          string
	Verify          string
	RequireMount    bool
	DestTimeout     time.Duration
	TransferTimeout time.Duration

	History  bool
	KeepDays int
	KeepMin  int

	LogFile string

	Mail mailConf

	PingURL     string
	PingCA      string
	PingTimeout time.Duration

	// Warnings are problems worth a line in the log that do not stop the run.
	Warnings []string
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
	v := &validator{lines: lines, base: filepath.Dir(abs)}
	for _, d := range dups {
		v.errs = multierror.Append(v.errs, d)
	}
	v.known(f)
	c := &Conf{Path: abs}

	c.URL = v.httpsURL(f, "source", "url")
	c.ExpectedFile = v.fileName(f, "source", "expected_file")
	c.SourceCA = v.readable(f, "source", "ca_file")
	c.Timeout = v.seconds(f, "source", "timeout")
	c.Retries = v.intRange(f, "source", "retries", 0, 20)
	c.RetryDelay = v.seconds0(f, "source", "retry_delay")
	c.MinSize = v.size(f, "source", "min_size")
	c.MaxSize = v.size(f, "source", "max_size")
	c.Conditional = v.yesNo(f, "source", "conditional")
	if c.MaxSize > 0 && c.MinSize > c.MaxSize {
		v.add("source", "min_size", "is larger than max_size")
	}

	c.NameFormat = v.nameFormat(f, "archive", "name_format")
	c.WorkDir = v.dir(f, "archive", "work_dir")
	c.StateDir = v.dir(f, "archive", "state_dir")
	c.OnUnchanged = v.oneOf(f, "archive", "on_unchanged", "skip", "fail", "archive")
	c.Compressor = v.oneOf(f, "archive", "compressor", "auto", "gzip", "pigz", "reuse")
	c.CompressionLevel = v.intRange(f, "archive", "compression_level", 1, 9)
	c.PackTimeout = v.seconds(f, "archive", "timeout")
	c.MaxUnchangedDays = v.intRange(f, "archive", "max_unchanged_days", 0, 3650)
	c.AllowRoot = v.yesNo(f, "archive", "allow_root")

	c.Protocol = v.oneOf(f, "destination", "protocol", "sftp", "ftps", "webdav", "smb", "nfs")
	c.DestTimeout = v.seconds(f, "destination", "timeout")
	c.TransferTimeout = v.seconds(f, "destination", "transfer_timeout")
	c.DestPath = v.plain(f, "destination", "path")
	// Each protocol requires its own keys and ignores the others', so switching protocol is
	// changing the keys of that protocol and nothing else.
	switch c.Protocol {
	case "sftp":
		c.Host = v.required(f, "destination", "host")
		c.User = v.required(f, "destination", "user")
		c.Port = v.port(f, "destination", "port", 22)
		c.IdentityFile = v.secretFile(f, "destination", "identity_file", true)
		c.KnownHosts = v.readableRequired(f, "destination", "known_hosts")
	case "ftps", "smb":
		c.Host = v.required(f, "destination", "host")
		c.User = v.required(f, "destination", "user")
		c.Port = v.port(f, "destination", "port", map[string]int{"ftps": 21, "smb": 445}[c.Protocol])
		c.PasswordFile = v.secretFile(f, "destination", "password_file", true)
		c.Verify = v.oneOf(f, "destination", "verify", "size", "download")
		if c.Protocol == "ftps" {
			c.DestCA = v.readable(f, "destination", "ca_file")
		} else {
			c.Share = v.required(f, "destination", "share")
			c.Domain = v.plain(f, "destination", "domain")
			c.SMBProtocol = v.oneOf(f, "destination", "smb_protocol", "SMB2", "SMB3")
		}
	case "webdav":
		c.DestURL = v.httpsURL(f, "destination", "url")
		c.User = v.required(f, "destination", "user")
		c.PasswordFile = v.secretFile(f, "destination", "password_file", true)
		c.DestCA = v.readable(f, "destination", "ca_file")
		c.Verify = v.oneOf(f, "destination", "verify", "size", "download")
	case "nfs":
		c.DestPath = v.path(f, "destination", "path")
		c.RequireMount = v.yesNo(f, "destination", "require_mount")
	}

	c.History = v.yesNo(f, "retention", "history")
	c.KeepDays = v.intRange(f, "retention", "keep_days", 0, 100000)
	c.KeepMin = v.intRange(f, "retention", "keep_min", 1, 100000)

	c.LogFile = v.path(f, "log", "file")
	c.Mail = v.mail(f)
	c.PingURL = v.pingURL(f, "monitor", "ping_url")
	c.PingCA = v.readable(f, "monitor", "ca_file")
	c.PingTimeout = v.seconds(f, "monitor", "timeout")

	if v.namesSecrets {
		if st, err := os.Stat(abs); err == nil && st.Mode().Perm()&0o077 != 0 {
			v.warn(fmt.Sprintf("conf %q is readable by group or others (mode %04o) and names secret files; chmod 600 it", abs, st.Mode().Perm()))
		}
	}
	c.Warnings = v.warnings
	return c, v.errs.ErrorOrNil()
}

// keyLines maps "section.key" to its line number, so errors can point at the line to fix.
func keyLines(data []byte) (map[string]int, []confError) {
	lines := map[string]int{}
	var dups []confError
	section := ini.DefaultSection
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "["):
			section = strings.TrimSpace(strings.Trim(l, "[]"))
			lines[section+"."] = n
		case strings.Contains(l, "=") && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, ";"):
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
	errs         *multierror.Error
	warnings     []string
	lines        map[string]int
	base         string
	namesSecrets bool
}

func (v *validator) add(section, key, msg string) {
	v.errs = multierror.Append(v.errs, confError{section, key, v.lines[section+"."+key], msg})
}

func (v *validator) count() int {
	if v.errs == nil {
		return 0
	}
	return len(v.errs.Errors)
}

func (v *validator) warn(msg string) { v.warnings = append(v.warnings, msg) }

// known rejects sections and keys that are not in confKeys: a typo must not silently fall back
// to a default.
func (v *validator) known(f *ini.File) {
	for _, s := range f.Sections() {
		if s.Name() == ini.DefaultSection {
			for _, k := range s.Keys() {
				v.add(ini.DefaultSection, k.Name(), "is outside any [section]")
			}
			continue
		}
		sectionKnown := false
		for _, ck := range confKeys {
			if ck.section == s.Name() {
				sectionKnown = true
			}
		}
		if !sectionKnown {
			v.add(s.Name(), "", "unknown section (expected one of [source] [archive] [destination] [retention] [log] [mail] [monitor])")
			continue
		}
		for _, k := range s.Keys() {
			if lookupKey(s.Name(), k.Name()) == nil {
				v.add(s.Name(), k.Name(), "unknown key (a typo? see archive.conf for the keys of this section)")
			}
		}
	}
}

// mailConf is the [mail] section. Usable tells whether it is sound enough to send a failure
// mail even when the rest of the conf is not.
type mailConf struct {
	Send, To, From, Transport, Host, User, PasswordFile, CAFile, AttachLog string
	Subject                                                                map[string]string // by outcome
	Port                                                                   int
	StartTLS                                                               bool
	Timeout                                                                time.Duration
	Usable                                                                 bool
}

func (v *validator) mail(f *ini.File) mailConf {
	before := v.count()
	m := mailConf{Subject: map[string]string{}}
	m.Send = v.oneOf(f, "mail", "send", "never", "failure", "always")
	m.AttachLog = v.oneOf(f, "mail", "attach_log", "never", "failure", "always")
	m.Transport = v.oneOf(f, "mail", "transport", "mta", "smtp", "smtps")
	m.StartTLS = v.yesNo(f, "mail", "starttls")
	m.Timeout = v.seconds(f, "mail", "timeout")
	m.From = v.plain(f, "mail", "from")
	if m.From == "" {
		host, _ := os.Hostname()
		m.From = "archive@" + host
	}
	for _, o := range []string{"success", "warning", "failure"} {
		m.Subject[o] = v.plain(f, "mail", "subject_"+o)
	}
	m.User = v.plain(f, "mail", "smtp_user")
	m.Host = v.plain(f, "mail", "smtp_host")
	m.CAFile = v.readable(f, "mail", "ca_file")
	if m.Send == "never" {
		return m
	}
	m.To = v.required(f, "mail", "to")
	for _, a := range strings.Split(m.To, ",") {
		if a = strings.TrimSpace(a); m.To != "" && (!strings.Contains(a, "@") || strings.HasPrefix(a, "-")) {
			v.add("mail", "to", fmt.Sprintf("%q is not a mail address (several are separated by commas)", a))
		}
	}
	if m.Transport != "mta" {
		m.Host = v.required(f, "mail", "smtp_host")
		m.Port = v.port(f, "mail", "smtp_port", map[string]int{"smtp": 587, "smtps": 465}[m.Transport])
		if m.User != "" {
			m.PasswordFile = v.secretFile(f, "mail", "smtp_password_file", true)
			if m.Transport == "smtp" && !m.StartTLS {
				v.add("mail", "starttls", "must be yes when smtp_user is set: the password is never sent in clear")
			}
		}
	}
	m.Usable = v.count() == before
	return m
}

func lookupKey(section, name string) *confKey {
	for i := range confKeys {
		if confKeys[i].section == section && confKeys[i].name == name {
			return &confKeys[i]
		}
	}
	return nil
}

// raw returns the value or the default, rejecting control characters: a value is one line of data.
func (v *validator) raw(f *ini.File, section, key string) (string, bool) {
	ck := lookupKey(section, key)
	if ck == nil {
		panic("conf key not in confKeys: " + section + "." + key)
	}
	val := ck.def
	if f.Section(section).HasKey(key) {
		val = strings.TrimSpace(f.Section(section).Key(key).String())
	}
	for _, r := range val {
		if r < 0x20 || r == 0x7f {
			v.add(section, key, "contains a control character or line break")
			return "", false
		}
	}
	return val, true
}

func (v *validator) plain(f *ini.File, section, key string) string {
	s, _ := v.raw(f, section, key)
	return s
}

func (v *validator) required(f *ini.File, section, key string) string {
	s, ok := v.raw(f, section, key)
	if ok && s == "" {
		v.add(section, key, "is required")
	}
	return s
}

func (v *validator) httpsURL(f *ini.File, section, key string) string {
	s := v.required(f, section, key)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add(section, key, fmt.Sprintf("is not a valid URL: %v", err))
	case u.Scheme != "https":
		v.add(section, key, fmt.Sprintf("must start with https:// (got %q): the dump is only fetched over verified TLS", u.Scheme+"://"))
	case u.Host == "":
		v.add(section, key, "has no host name")
	case u.User != nil:
		v.add(section, key, "must not hold a user or password (it would show in the log and in ps)")
	}
	return s
}

// pingURL is a monitoring address; plain http is allowed for a service on the local network, but
// TLS, when used, is verified like everywhere else.
func (v *validator) pingURL(f *ini.File, section, key string) string {
	s, _ := v.raw(f, section, key)
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(section, key, fmt.Sprintf("must be an http:// or https:// address (got %q)", s))
	}
	return s
}

func (v *validator) fileName(f *ini.File, section, key string) string {
	s := v.required(f, section, key)
	if s != "" && (strings.ContainsAny(s, `/\`) || s == "." || s == "..") {
		v.add(section, key, fmt.Sprintf("must be a file name without folders, like dump.sql (got %q)", s))
	}
	return s
}

func (v *validator) path(f *ini.File, section, key string) string {
	s, _ := v.raw(f, section, key)
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(v.base, s)
}

func (v *validator) dir(f *ini.File, section, key string) string {
	s := v.path(f, section, key)
	if s == "" {
		v.add(section, key, "is required")
	}
	return s
}

// readable is an optional file that must be readable when given.
func (v *validator) readable(f *ini.File, section, key string) string {
	s := v.path(f, section, key)
	if s == "" {
		return ""
	}
	if fh, err := os.Open(s); err != nil {
		v.add(section, key, fmt.Sprintf("cannot read %q: %v", s, plainErr(err)))
	} else {
		fh.Close()
	}
	return s
}

func (v *validator) readableRequired(f *ini.File, section, key string) string {
	if s, _ := v.raw(f, section, key); s == "" {
		v.add(section, key, "is required")
		return ""
	}
	return v.readable(f, section, key)
}

// secretFile is a key or password file: readable, and private to its owner.
func (v *validator) secretFile(f *ini.File, section, key string, required bool) string {
	if s, _ := v.raw(f, section, key); s == "" {
		if required {
			v.add(section, key, "is required")
		}
		return ""
	}
	v.namesSecrets = true
	s := v.readable(f, section, key)
	if st, err := os.Stat(s); err == nil && st.Mode().Perm()&0o077 != 0 {
		v.warn(fmt.Sprintf("[%s] %s: %q is readable by group or others (mode %04o); chmod 600 it", section, key, s, st.Mode().Perm()))
	}
	return s
}

func (v *validator) intRange(f *ini.File, section, key string, lo, hi int) int {
	s, ok := v.raw(f, section, key)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		v.add(section, key, fmt.Sprintf("must be a whole number from %d to %d (got %q)", lo, hi, s))
	}
	return n
}

func (v *validator) port(f *ini.File, section, key string, def int) int {
	if s, _ := v.raw(f, section, key); s == "" {
		return def
	}
	return v.intRange(f, section, key, 1, 65535)
}

func (v *validator) seconds(f *ini.File, section, key string) time.Duration {
	return time.Duration(v.intRange(f, section, key, 1, 7*24*3600)) * time.Second
}

func (v *validator) seconds0(f *ini.File, section, key string) time.Duration {
	return time.Duration(v.intRange(f, section, key, 0, 3600)) * time.Second
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMGT]?)i?B?$`)

// size reads a byte count with an optional K, M, G or T suffix (powers of 1024).
func (v *validator) size(f *ini.File, section, key string) int64 {
	s, ok := v.raw(f, section, key)
	if !ok {
		return 0
	}
	m := sizeRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		v.add(section, key, fmt.Sprintf("must be a size such as 500, 20M or 64G (got %q)", s))
		return 0
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if err != nil || n < 1 || n > (1<<62)>>shift {
		v.add(section, key, fmt.Sprintf("must be a size from 1 byte to 4096P (got %q)", s))
		return 0
	}
	return n << shift
}

func (v *validator) oneOf(f *ini.File, section, key string, allowed ...string) string {
	s, ok := v.raw(f, section, key)
	if !ok {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	v.add(section, key, fmt.Sprintf("must be one of %s (got %q)", strings.Join(allowed, ", "), s))
	return s
}

func (v *validator) yesNo(f *ini.File, section, key string) bool {
	return v.oneOf(f, section, key, "yes", "no") == "yes"
}

func (v *validator) nameFormat(f *ini.File, section, key string) string {
	s, ok := v.raw(f, section, key)
	if ok {
		if err := checkNameFormat(s); err != nil {
			v.add(section, key, err.Error())
		}
	}
	return s
}

// plainErr drops the "open /path:" prefix that the error message already names.
func plainErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
