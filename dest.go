package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dest is the archive server, reached through steps/dest-PROTOCOL.sh. Every protocol script
// answers the same verbs (check, put, rename, verify, list, delete, get) with the same exit codes,
// so this file knows nothing of any one protocol but the environment it passes down.
type dest struct {
	conf *Conf
}

func (r *run) dest() dest { return dest{r.conf} }

func (d dest) script() string { return "dest-" + d.conf.Protocol + ".sh" }

// env is what the protocol script needs: only paths to secret files, never a secret.
func (d dest) env() []string {
	c := d.conf
	env := []string{"ARCHIVE_DEST_PATH=" + c.DestPath, "ARCHIVE_DEST_TIMEOUT=" + secs(c.DestTimeout)}
	if c.Port != 0 {
		env = append(env, "ARCHIVE_DEST_PORT="+strconv.Itoa(c.Port))
	}
	if c.Protocol == "nfs" {
		env = append(env, "ARCHIVE_DEST_REQUIRE_MOUNT="+yesNo(c.RequireMount))
	}
	for k, v := range map[string]string{"HOST": c.Host, "USER": c.User, "IDENTITY_FILE": c.IdentityFile,
		"KNOWN_HOSTS": c.KnownHosts, "PASSWORD_FILE": c.PasswordFile, "URL": c.DestURL, "SHARE": c.Share,
		"DOMAIN": c.Domain, "SMB_PROTOCOL": c.SMBProtocol, "CA_FILE": c.DestCA, "VERIFY": c.Verify} {
		if v != "" {
			env = append(env, "ARCHIVE_DEST_"+k+"="+v)
		}
	}
	return env
}

// where names the destination for the log.
func (d dest) where() string {
	c := d.conf
	switch c.Protocol {
	case "webdav":
		return c.DestURL
	case "nfs":
		return "nfs:" + c.DestPath
	case "smb":
		return fmt.Sprintf("smb://%s@%s:%d/%s/%s", c.User, c.Host, c.Port, c.Share, strings.Trim(c.DestPath, "./"))
	}
	return fmt.Sprintf("%s://%s@%s:%d%s", c.Protocol, c.User, c.Host, c.Port, shownPath(c.DestPath))
}

// shownPath tells an absolute folder from one in the login folder: /srv/x, /~/x.
func shownPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/~/" + strings.TrimPrefix(strings.TrimPrefix(p, "."), "/")
}

func (d dest) remote(name string) string { return strings.TrimSuffix(d.where(), "/") + "/" + name }

// call is one verb of the protocol script. Go allows it more than the script's own timeouts, so
// that the script's precise cause (28: the server did not answer) wins over Go's.
func (d dest) call(check string, exit int, timeout time.Duration, args ...string) step {
	key := "[destination] transfer_timeout"
	if timeout == d.conf.DestTimeout {
		key = "[destination] timeout"
	}
	return step{check: check, script: d.script(), args: args, env: d.env(), timeout: timeout + 2*d.conf.DestTimeout + 10*time.Second,
		causes: d.causes(), timeoutKey: key}
}

// causes is destCauses with the conf keys of this protocol: a TLS server is trusted through
// ca_file, not known_hosts; a WebDAV server is found through url; an SMB folder lives in a share.
func (d dest) causes() map[int]cause {
	keys := map[string]map[int]string{
		"ftps":   {21: "[destination] ca_file"},
		"webdav": {20: "[destination] url", 21: "[destination] ca_file", 23: "[destination] url", 24: "[destination] url", 25: "[destination] url", 27: "[destination] url", 29: "[destination] url"},
		"smb":    {23: "[destination] share"},
	}[d.conf.Protocol]
	if len(keys) == 0 {
		return destCauses
	}
	out := make(map[int]cause, len(destCauses))
	for code, c := range destCauses {
		if k, ok := keys[code]; ok {
			c.key = k
		}
		out[code] = c
	}
	return out
}

// tempName is where an upload lands before its rename: hidden, and never a name retention parses.
func tempName(name string) string { return "." + name + ".part" }

// isTempName tells the temporary names this tool makes (for an archive of this format, its
// checksum file, or a check probe) from anything else in the folder, which it never removes.
func isTempName(format, name string) bool {
	if strings.HasPrefix(name, probePrefix) || strings.HasPrefix(name, "."+probePrefix) {
		return true
	}
	base, ok := strings.CutSuffix(strings.TrimPrefix(name, "."), ".part")
	if !ok || !strings.HasPrefix(name, ".") {
		return false
	}
	_, parsed := parseArchiveName(format, strings.TrimSuffix(base, sidecarExt))
	return parsed
}

const (
	sidecarExt  = ".sha256"
	probePrefix = "archive-check-probe-"
)

// transfer puts the archive under a temporary name, verifies it there, then renames it: the
// final name only ever holds a whole, verified archive.
func (r *run) transfer(ctx context.Context, d dest, local, name, sum, size string) *failure {
	c := r.conf
	files, fail := r.list(ctx, d, "transfer", exitTransfer)
	if fail != nil {
		return fail
	}
	for _, f := range files {
		if isTempName(c.NameFormat, f.Name) {
			// Left by an interrupted run; we hold the lock, so no other run is writing it.
			if _, fail := r.do(ctx, d.call("transfer", exitTransfer, c.DestTimeout, "delete", f.Name), exitTransfer); fail == nil {
				r.log.info("transfer", kv("removed", f.Name), kv("reason", "temporary file left by an interrupted run"))
			}
		}
		if f.Name != name {
			continue
		}
		// Today's name is already there: the same bytes need no upload; others are replaced. Only
		// a sha256 proves the same bytes: a mere size match (verify = size) is uploaded again.
		res, fail := r.do(ctx, d.call("transfer", exitTransfer, c.TransferTimeout, "verify", name, sum, size), exitTransfer)
		if fail == nil && res.facts["sha256"] == sum {
			r.log.ok("transfer", kv("remote", d.remote(name)), kv("size", size), kv("sha256", short(sum)), kv("note", "already on the server with the same content; nothing uploaded"))
			return nil
		}
		if fail != nil && res.code != 27 {
			return fail
		}
		note := "a different file has this name; it will be replaced atomically"
		if fail == nil {
			note = "a file of the same size has this name, but this protocol cannot prove it the same; it will be replaced atomically"
		}
		r.log.info("transfer", kv("remote", d.remote(name)), kv("note", note))
	}

	start := time.Now()
	res, fail := r.upload(ctx, d, "transfer", exitTransfer, local, name, sum, size)
	if fail != nil {
		return fail
	}
	verified := "size"
	if res.facts["sha256"] != "" {
		verified = "sha256"
	}
	r.log.ok("transfer", kv("remote", d.remote(name)), kv("size", size), kv("sha256", short(sum)), kv("verified", verified),
		kv("duration", time.Since(start).Round(time.Millisecond)))
	return nil
}

// upload puts a local file on the server under its final name through a verified temporary one.
func (r *run) upload(ctx context.Context, d dest, check string, exit int, local, name, sum, size string) (stepResult, *failure) {
	c := r.conf
	tmp := tempName(name)
	// The cleanup runs even after a signal: a stopped upload must not leave its temporary file.
	cleanup := func() { r.do(context.WithoutCancel(ctx), d.call(check, exit, c.DestTimeout, "delete", tmp), exit) }
	if res, fail := r.do(ctx, d.call(check, exit, c.TransferTimeout, "put", local, tmp), exit); fail != nil {
		if res.err != nil { // stopped (signal, timeout) before the script's own cleanup
			cleanup()
		}
		return stepResult{}, fail
	}
	res, fail := r.do(ctx, d.call(check, exit, c.TransferTimeout, "verify", tmp, sum, size), exit)
	if fail == nil {
		_, fail = r.do(ctx, d.call(check, exit, c.DestTimeout, "rename", tmp, name), exit)
	}
	if fail != nil {
		cleanup()
	}
	return res, fail
}

// record keeps the archive's sha256 twice: in state_dir, and as NAME.sha256 beside the archive, so
// that a restore from a fresh machine can still prove the archive intact.
func (r *run) record(ctx context.Context, d dest, name, sum string) bool {
	if err := addRecord(r.conf.StateDir, name, sum); err != nil {
		r.log.warning("record", kv("cause", err.Error()), kv("key", "[archive] state_dir"))
		return false
	}
	local := filepath.Join(r.work, name+sidecarExt)
	body := sum + "  " + name + "\n"
	if err := os.WriteFile(local, []byte(body), 0o600); err != nil {
		r.log.warning("record", kv("cause", "cannot write "+local+": "+plainErr(err)))
		return false
	}
	if _, fail := r.upload(ctx, d, "record", exitWarning, local, name+sidecarExt, sha256Hex(body), strconv.Itoa(len(body))); fail != nil {
		r.log.warning("record", kv("cause", "cannot put the checksum file beside the archive: "+fail.cause), kv("detail", fail.detail), kv("key", fail.key))
		return false
	}
	r.log.ok("record", kv("remote", d.remote(name+sidecarExt)), kv("local", filepath.Join(r.conf.StateDir, recordsFile)))
	return true
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// preview is the end of a dry run: what would be uploaded and deleted, with nothing changed.
func (r *run) preview(ctx context.Context, d dest, name, size string) int {
	r.log.info("transfer", kv("would_upload", d.remote(name)), kv("size", size))
	files, fail := r.list(ctx, d, "prune", exitWarning)
	if fail != nil {
		r.log.warning("prune", kv("cause", "cannot list the archive server: "+fail.cause), kv("detail", fail.detail))
		return exitWarning
	}
	c := r.conf
	items, _ := planPrune(withName(files, name), c.NameFormat, r.now, retention{c.History, c.KeepDays, c.KeepMin}, name)
	for _, it := range items {
		if it.Delete {
			r.log.info("prune", kv("would_delete", it.Name), kv("date", it.Date.Format("2006-01-02")), kv("reason", it.Reason))
		}
	}
	return exitOK
}

// withName is the listing as it will be once name is uploaded.
func withName(files []remoteFile, name string) []remoteFile {
	for _, f := range files {
		if f.Name == name {
			return files
		}
	}
	return append(files, remoteFile{Name: name})
}

// list reads the server's folder.
func (r *run) list(ctx context.Context, d dest, check string, exit int) ([]remoteFile, *failure) {
	res, fail := r.do(ctx, d.call(check, exit, r.conf.DestTimeout, "list"), exit)
	if fail != nil {
		return nil, fail
	}
	var files []remoteFile
	for _, l := range strings.Split(res.out, "\n") {
		name, size, ok := strings.Cut(l, "\t")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(size, 10, 64)
		files = append(files, remoteFile{name, n})
	}
	return files, nil
}

// prune deletes the archives past their retention, one logged line each. It reports false when
// something went wrong: the run is then a WARNING, never a failure of the good archive.
func (r *run) prune(ctx context.Context, d dest, keep string) bool {
	c := r.conf
	files, fail := r.list(ctx, d, "prune", exitWarning)
	if fail != nil {
		r.log.warning("prune", kv("cause", "cannot list the archive server: "+fail.cause), kv("detail", fail.detail), kv("key", fail.key))
		return false
	}
	items, ignored := planPrune(files, c.NameFormat, r.now, retention{c.History, c.KeepDays, c.KeepMin}, keep)
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Name] = true
	}
	ok, deleted := true, 0
	for _, it := range items {
		if !it.Delete {
			continue
		}
		if _, fail := r.do(ctx, d.call("prune", exitWarning, c.DestTimeout, "delete", it.Name), exitWarning); fail != nil {
			ok = false
			r.log.warning("prune", kv("name", it.Name), kv("cause", "cannot delete: "+fail.cause), kv("detail", fail.detail), kv("key", fail.key))
			continue
		}
		deleted++
		r.log.info("prune", kv("deleted", it.Name), kv("date", it.Date.Format("2006-01-02")), kv("reason", it.Reason))
		removeRecord(c.StateDir, it.Name)
		if side := it.Name + sidecarExt; listed[side] {
			if _, fail := r.do(ctx, d.call("prune", exitWarning, c.DestTimeout, "delete", side), exitWarning); fail != nil {
				ok = false
				r.log.warning("prune", kv("name", side), kv("cause", "cannot delete: "+fail.cause), kv("detail", fail.detail))
			} else {
				r.log.info("prune", kv("deleted", side), kv("reason", "the checksum file of "+it.Name))
			}
		}
	}
	facts := []fact{kv("kept", len(items)-deleted), kv("deleted", deleted), kv("keep_days", c.KeepDays), kv("keep_min", c.KeepMin), kv("history", yesNo(c.History))}
	if n := countIgnored(ignored, listed); n > 0 {
		facts = append(facts, kv("ignored", n))
	}
	if ok {
		r.log.ok("prune", facts...)
	}
	return ok
}

// countIgnored counts the files retention left alone, not counting the checksum files of archives.
func countIgnored(ignored []string, listed map[string]bool) int {
	n := 0
	for _, name := range ignored {
		if base, ok := strings.CutSuffix(name, sidecarExt); !ok || !listed[base] {
			n++
		}
	}
	return n
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
