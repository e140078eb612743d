package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// cause is what a step's exit code means, in words a technician acts on: the conf key to look
// at and what to check. Text may name a fact the step printed, as {status}.
type cause struct {
	text, key, hint string
}

// Exit codes of the step scripts, one table per script; each script's header lists the same.
var fetchCauses = map[int]cause{
	1:  {"the source could not be read, for a reason curl names (detail=)", "[source] url", "read detail=, curl's own words; rerun the step by hand (rerun=)"},
	3:  {"the URL is not https://", "[source] url", "use the https:// address of the dump"},
	10: {"the source host name does not resolve (DNS)", "[source] url", "check the host name in the URL and this machine's DNS (/etc/resolv.conf)"},
	11: {"cannot connect to the source server (refused or unreachable)", "[source] url", "check the host and port in the URL, that the web server runs, and any firewall"},
	12: {"the source's TLS certificate is not trusted (unknown CA or wrong host name)", "[source] ca_file", "for a private CA, set ca_file to its PEM file; check the URL's host name matches the certificate"},
	13: {"the TLS handshake with the source failed", "[source] url", "check the server's TLS setup (protocol versions, ciphers)"},
	14: {"the source answered HTTP {status}", "[source] url", "404: the file is not at that address; 401/403: access refused; 5xx: the web server has a problem"},
	15: {"the source did not answer in time", "[source] timeout", "check the network, or raise timeout for a slow server"},
	16: {"the download was cut short", "[source] url", "the connection broke, after the retries that [source] retries allows; check the network and the server"},
	17: {"cannot write the zip in the work folder (disk full or permission)", "[archive] work_dir", "free space in work_dir or fix its permissions"},
	18: {"the source redirected to an address that is not https:// (refused)", "[source] url", "the dump is fetched over verified TLS only; ask for an https:// link, or put the final one in url"},
}

var unpackCauses = map[int]cause{
	20: {"the downloaded file is not a zip", "[source] url", "open the URL in a browser: the server may send an error page instead of the dump"},
	21: {"the zip is corrupt or truncated", "[source] url", "download it by hand and test it with unzip -t; the export on the server may have failed"},
	22: {"the zip does not hold the expected file", "[source] expected_file", "list the zip with unzip -l: the member must be at its root, with exactly this name"},
	23: {"the zip holds the expected name more than once", "[source] expected_file", "the export on the server is ambiguous; fix it there"},
	24: {"the dump expands past max_size (zip bomb guard)", "[source] max_size", "raise max_size if the dump really grew that much"},
	25: {"the dump is smaller than min_size: it looks empty or truncated", "[source] min_size", "check the export on the server; lower min_size only if such a small dump is normal"},
	26: {"cannot write the dump in the work folder (disk full or permission)", "[archive] work_dir", "free space in work_dir (it needs about three times the zip's size) or fix its permissions"},
	27: {"the dump in the zip is encrypted", "[source] url", "the export must write a zip without a password: archive never asks for one"},
	28: {"the dump in the zip uses a compression method archive cannot read", "[source] url", "the export must write a plain zip (deflated or stored members)"},
}

var packCauses = map[int]cause{
	1:  {"packing failed, for a reason the step names (detail=)", "[archive] work_dir", "read detail=; rerun the step by hand (rerun=)"},
	20: {"tar or the compressor failed, or the zip's data could not be reused", "[archive] compressor", "run the step by hand (rerun=) to see the tool's message; compressor = pigz or gzip packs without the zip's data"},
	21: {"cannot write the archive in the work folder (disk full or permission)", "[archive] work_dir", "free space in work_dir or fix its permissions"},
	22: {"the archive written is not a valid gzip tar", "[archive] work_dir", "check the disk holding work_dir for errors"},
}

// destCauses is shared by every dest-*.sh: a protocol is one script answering the same verbs with
// the same codes.
var destCauses = map[int]cause{
	1:  {"the archive server refused the operation, for a reason it names (detail=)", "[destination] host", "read detail=, the server's own words; rerun the step by hand (rerun=)"},
	20: {"cannot reach the archive server (refused or unreachable)", "[destination] host", "check host and port, that the server runs, and any firewall"},
	21: {"the archive server is not trusted (host key unknown or changed, or TLS certificate not trusted)", "[destination] known_hosts", "sftp: if the server was reinstalled, verify its new key with its administrator, then update known_hosts; ftps, webdav, s3: set ca_file to the CA that signed the server's certificate"},
	22: {"the archive server refused the login", "[destination] user", "check user and the key or password_file (s3: the key id and secret in access_key_file, and region); an SSH key must be in the server's authorized_keys"},
	23: {"the folder does not exist on the archive server", "[destination] path", "create the folder on the server or fix path (s3: the bucket)"},
	24: {"permission denied on the archive server", "[destination] path", "the user must be allowed to write, rename and delete in path"},
	25: {"the archive server has no space left", "[destination] path", "free space on the server or shorten [retention] keep_days"},
	26: {"the transfer was interrupted (connection lost)", "[destination] host", "check the network and the server; the next run retries"},
	27: {"the copy on the archive server differs from the local archive", "[destination] path", "check the server's disk; the next run retries"},
	28: {"the archive server did not answer in time", "[destination] timeout", "check the network, or raise timeout / transfer_timeout"},
	29: {"the file is not on the archive server", "[destination] path", "someone may have removed it"},
	30: {"the NFS folder is not a mount point: the share is not mounted", "[destination] path", "mount the export (see /etc/fstab); set require_mount = no only for a local folder"},
	31: {"the FTP server does not offer TLS", "[destination] host", "enable explicit TLS (AUTH TLS) on the server; archive never sends a password in clear"},
}

var encryptCauses = map[int]cause{
	1:  {"the encryption failed, for a reason age names (detail=)", "[archive] encrypt_to", "read detail=; rerun the step by hand (rerun=)"},
	20: {"age refused the recipients file", "[archive] encrypt_to", "one age public key (age1...) or SSH public key per line; make one with age-keygen -y IDENTITY"},
	21: {"cannot write the encrypted archive in the work folder (disk full or permission)", "[archive] work_dir", "free space in work_dir: after gzip or pigz, encrypting needs room for the archive twice"},
}

var extractCauses = map[int]cause{
	1:  {"the restore failed, for a reason the step names (detail=)", "--to", "read detail=; run extract.sh by hand"},
	20: {"the archive is not the one uploaded (its sha256 differs from the record)", "[destination] path", "do not trust this copy; restore an older archive and tell the server's administrator"},
	21: {"the archive is not a valid .tgz holding the dump alone, as a regular file", "[destination] path", "restore an older archive; an archive holding anything else was not made by archive"},
	22: {"the target folder already holds the dump's file name", "--to", "move the file away or choose another folder"},
	23: {"cannot write the dump in the target folder", "--to", "free space or fix permissions"},
	24: {"cannot decrypt the archive with this identity", "--identity", "give the age identity (secret key) of one of the recipients in [archive] encrypt_to"},
	25: {"the dump is not the one archived (its sha256 differs from the record)", "[destination] path", "do not trust this copy; restore an older archive"},
}

// archiveBin is the input of the steps that read the zip: this very program (unzip-member,
// pack-member), named in their rerun line too.
func archiveBin() string {
	exe, err := os.Executable()
	if err != nil {
		exe = "archive"
	}
	return "ARCHIVE_BIN=" + exe
}

// Causes every script shares.
var commonCauses = map[int]cause{
	2:   {"the step was called wrongly (a bug in archive)", "", "report it with the log lines"},
	127: {"a required tool is missing", "", "install the package named in the message (see the user guide's requirements)"},
}

// step is one call of a step script.
type step struct {
	check   string // the check it serves, as logged
	script  string // file name in the steps folder
	args    []string
	env     []string // ARCHIVE_*=value; never a secret, only paths to secret files
	timeout time.Duration
	causes  map[int]cause
	// timeoutKey is the conf key that sets timeout, named when a step runs out of time.
	timeoutKey string
	// before is the step whose output this one reads, rerun first when an operator reruns this.
	before *step
}

// stepResult is what came back: the exit code, the key=value facts printed on stdout, the raw
// stdout, and the last lines of stderr (the script's own cause last, the tool's words before).
type stepResult struct {
	code  int
	facts map[string]string
	out   string
	tail  []string
	err   error  // could not start, timed out or interrupted: code is then -1
	kind  string // for err: "start", "timeout" or "interrupted"
}

// failure is a failed check, ready to be logged and mailed.
type failure struct {
	check  string
	exit   int
	cause  string
	detail string // the step's and the tool's own last words
	key    string
	hint   string
	rerun  string
	logged bool // its lines are in the log already (the conf's problems, one line each)
}

// stepRunner runs step scripts with a clean environment and bounded output.
type stepRunner struct {
	stepsDir string
	tmpDir   string
	// lock is the run's lock file, handed to every step as fd 3: a step, and every tool it
	// starts, holds the lock until it ends, so that no run can start beside a step left behind
	// by a run killed with -9.
	lock *os.File
}

func newStepRunner(tmp string, lock *lockFile) *stepRunner {
	r := &stepRunner{stepsDir: stepsDir(), tmpDir: tmp}
	os.Mkdir(filepath.Join(tmp, ".home"), 0o700)
	if lock != nil {
		r.lock = lock.f
	}
	return r
}

const maxStdout = 4 << 20

func (r *stepRunner) exec(ctx context.Context, s step) stepResult {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(r.stepsDir, s.script), s.args...)
	cmd.Env = append(baseEnv(r.tmpDir), s.env...)
	cmd.Dir = r.tmpDir
	// Its own session and process group, so that a timeout or a signal stops curl, ssh and the rest too; and
	// killed with archive, so that a run killed with -9 leaves no script behind. No terminal: a
	// tool that would prompt (unzip for a password, ssh for a key) has no /dev/tty to open, and
	// its standard input is /dev/null.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if r.lock != nil {
		cmd.ExtraFiles = []*os.File{r.lock}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout limitedBuffer
	var stderr tailBuffer
	stdout.max = maxStdout
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := stepResult{out: stdout.String(), facts: parseFacts(stdout.String()), tail: stderr.lines(3)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() == context.DeadlineExceeded:
		res.code, res.err, res.kind = -1, fmt.Errorf("did not finish within %s and was stopped", s.timeout), "timeout"
	case ctx.Err() != nil:
		res.code, res.err, res.kind = -1, errors.New("was interrupted"), "interrupted"
	case errors.As(err, &ee) && ee.Exited():
		res.code = ee.ExitCode()
	default:
		res.code, res.err, res.kind = -1, fmt.Errorf("cannot be run (%s: %v)", cmd.Path, plainErr(err)), "start"
	}
	return res
}

// baseEnv is all a step inherits: no stray ARCHIVE_* (or TAR_OPTIONS, SSL_CERT_FILE...) from the
// caller's shell, C messages that the scripts can parse, and temporary files and HOME in the
// run's own work folder.
func baseEnv(tmp string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
	}
	// HOME is an empty folder of the run's own: no ~/.ssh/config, ~/.curlrc, ~/.muttrc, ~/.popt or
	// ~/.smb of the user running archive (or planted in state_dir, the default HOME) can change
	// what a tool does. The scripts also tell each tool to ignore its user configuration.
	return []string{"PATH=" + path, "LC_ALL=C", "TMPDIR=" + tmp, "HOME=" + filepath.Join(tmp, ".home")}
}

// parseFacts reads the key=value lines a step prints on stdout.
func parseFacts(out string) map[string]string {
	facts := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k != "" && !strings.ContainsAny(k, " \t") {
			facts[k] = v
		}
	}
	return facts
}

// explain turns a failed step into a failure: cause and hint from the step's table, the step's own
// words, and the command that reruns it by hand.
func (r *stepRunner) explain(s step, res stepResult, exit int) *failure {
	f := &failure{check: s.check, exit: exit, detail: strings.Join(res.tail, " | "), rerun: r.rerun(s)}
	c, ok := s.causes[res.code]
	if !ok {
		c, ok = commonCauses[res.code]
	}
	switch {
	case res.kind == "start":
		f.cause = fmt.Sprintf("the step %s %s", s.script, res.err)
		f.hint = "check the installation: the steps folder must be beside the binary (steps/ or ../lib/archive/steps) and its scripts executable"
	case res.err != nil:
		f.cause = fmt.Sprintf("the step %s %s", s.script, res.err)
		f.key, f.hint = s.timeoutKey, "check what the step waits for (network, server, disk), or raise the timeout"
	case ok:
		f.cause, f.key, f.hint = fill(c.text, res.facts), c.key, c.hint
	default:
		// A code the step's header does not list (a bug): its own last words are the cause.
		f.cause = fmt.Sprintf("the step %s stopped with exit code %d, which it does not document: %s", s.script, res.code, orUnknown(strings.Join(res.tail, " | ")))
		f.hint = "run the step by hand (rerun=) and report its output"
	}
	return f
}

// fill replaces {fact} with the value the step reported.
func fill(text string, facts map[string]string) string {
	for k, v := range facts {
		text = strings.ReplaceAll(text, "{"+k+"}", v)
	}
	return text
}

// rerun is the shell line that repeats a step by hand. Only non-secret values are ever in env.
// The run's work folder is gone when an operator reads the log, so a rerun works in a folder of
// its own, made private by mktemp: never a fixed name in /tmp that another user could make first.
func (r *stepRunner) rerun(s step) string {
	line := r.rerunChain(s)
	if strings.Contains(line, rerunVar) {
		line = "d=$(mktemp -d /tmp/archive-rerun.XXXXXX) && " + line
	}
	return line
}

// rerunVar stands for the rerun's folder in its line; unquoted, since mktemp's name has no space
// and a quote would come out of the log escaped (\"), breaking a copy and paste.
const rerunVar = `$d/`

// rerunChain is the step's command, after the step whose output it reads.
func (r *stepRunner) rerunChain(s step) string {
	var b strings.Builder
	if s.before != nil {
		b.WriteString(r.rerunChain(*s.before) + " && ")
	}
	env := append([]string(nil), s.env...)
	sort.Strings(env)
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&b, "%s=%s ", k, r.rerunWord(v))
	}
	b.WriteString(shellQuote(filepath.Join(r.stepsDir, s.script)))
	for _, a := range s.args {
		b.WriteString(" " + r.rerunWord(a))
	}
	return b.String()
}

// rerunWord is a value for the rerun's line, quoted, its paths in the work folder moved to "$d".
func (r *stepRunner) rerunWord(v string) string {
	if r.tmpDir == "" || !strings.Contains(v, r.tmpDir+"/") {
		return shellQuote(v)
	}
	parts := strings.Split(v, r.tmpDir+"/")
	for i, p := range parts {
		if p != "" {
			parts[i] = shellQuote(p)
		}
	}
	return strings.Join(parts, rerunVar)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// limitedBuffer keeps the first max bytes.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// tailBuffer keeps the last 16 KiB: a step's cause is its last line.
type tailBuffer struct{ buf []byte }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 16<<10 {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-16<<10:]...)
	}
	return len(p), nil
}

// lines returns the last n non-empty lines, oldest first.
func (b *tailBuffer) lines(n int) []string {
	var all []string
	sc := bufio.NewScanner(bytes.NewReader(b.buf))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			all = append(all, l)
		}
	}
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}
