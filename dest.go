package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// dest is one archive server, reached through steps/dest-PROTOCOL.sh. Every protocol script
// answers the same verbs (check, put, rename, verify, list, delete, get) with the same exit codes,
// so this file knows nothing of any one protocol but the environment it passes down.
type dest struct {
	*Destination
}

// dests are the conf's destinations, in its order.
func (j *job) dests() []dest {
	out := make([]dest, len(j.conf.Dests))
	for i, d := range j.conf.Dests {
		out[i] = dest{d}
	}
	return out
}

// at makes d the destination the next log lines are about: with several, each line names it.
func (j *job) at(d dest) {
	if len(j.conf.Dests) > 1 {
		j.current = d.label()
	}
}

// has tells whether this host delivered the dump of the last archived state here: an archive of
// it in this destination's records.
func (d dest) has(prev state) bool {
	if readRecords(d.StateDir)[prev.Name] == prev.ArchiveSHA256 {
		return true
	}
	for _, f := range readFacts(d.StateDir) {
		if f.dump == prev.SHA256 {
			return true
		}
	}
	return false
}

func (d dest) script() string { return "dest-" + d.Protocol + ".sh" }

// key names one of the destination's conf keys, as a message shows it: [destination NAME] KEY.
func (d dest) key(k string) string { return "[" + d.section() + "] " + k }

// env is what the protocol script needs: every [destination] key of its protocol, as
// ARCHIVE_DEST_KEY; only paths to secret files, never a secret.
func (d dest) env() []string {
	var env []string
	for _, ck := range confKeys {
		// transfer_timeout is archive's own limit on a step; the script's own is timeout.
		if ck.s != "destination" || ck.k == "protocol" || ck.k == "transfer_timeout" || !ck.appliesTo(d.Protocol) {
			continue
		}
		if v := fieldText(d.Destination, ck.field); v != "" {
			env = append(env, "ARCHIVE_DEST_"+strings.ToUpper(ck.k)+"="+v)
		}
	}
	return env
}

// where names the destination for the log, as its protocol's row shows it.
func (d dest) where() string {
	c := d.Destination
	prefix := strings.Trim(c.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return strings.NewReplacer("{user}", c.User, "{host}", c.Host, "{port}", strconv.Itoa(c.Port), "{path}", shownPath(c.DestPath),
		"{folder}", strings.Trim(c.DestPath, "./"), "{share}", c.Share, "{url}", c.DestURL, "{bucket}", c.Bucket, "{prefix}", prefix).Replace(protocolOf(c.Protocol).shown)
}

// shownPath tells an absolute folder from one in the login folder: /srv/x, /~/x.
func shownPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/~/" + strings.TrimPrefix(strings.TrimPrefix(p, "."), "/")
}

func (d dest) remote(name string) string { return strings.TrimSuffix(d.where(), "/") + "/" + name }

// quick is a verb that moves no archive (check, list, rename, delete): [destination] timeout.
func (d dest) quick(check string, args ...string) step {
	return d.verb(check, d.DestTimeout, d.key("timeout"), args)
}

// long is a verb that moves or reads a whole archive (put, verify, get): transfer_timeout.
func (d dest) long(check string, args ...string) step {
	return d.verb(check, d.TransferTimeout, d.key("transfer_timeout"), args)
}

// verb is one call of the protocol script. Go allows it more than the script's own timeouts, so
// that the script's precise cause (28: the server did not answer) wins over Go's.
func (d dest) verb(check string, timeout time.Duration, key string, args []string) step {
	return step{check: check, script: d.script(), args: args, env: d.env(), timeout: timeout + 2*d.DestTimeout + 10*time.Second,
		causes: d.causes(), timeoutKey: key}
}

// causes is destCauses with the conf keys of this protocol (a TLS server is trusted through
// ca_file, not known_hosts; a WebDAV server is found through url; an SMB folder lives in a share),
// in this destination's section.
func (d dest) causes() map[int]cause {
	keys := protocolOf(d.Protocol).keys
	out := make(map[int]cause, len(destCauses))
	for code, c := range destCauses {
		if k, ok := keys[code]; ok {
			c.key = d.key(k)
		} else if k, ok := strings.CutPrefix(c.key, "[destination] "); ok {
			c.key = d.key(k)
		}
		out[code] = c
	}
	return out
}

// tempName is where an upload lands before its rename: never a name retention parses; not
// hidden, since some servers refuse to write a name starting with a dot (pure-ftpd's
// ProhibitDotFilesWrite) or leave it out of their listing (nginx's PROPFIND), where the next run
// would never sweep it; and unguessable, so that nobody can plant a link there in advance for the
// server to write through (vsftpd, cp and most servers follow one).
func tempName(name string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return name + "." + hex.EncodeToString(b) + ".part"
}

// isTempName tells the temporary names this tool makes (for an archive of this format, its
// checksum file, or a check probe) from anything else in the folder, which it never removes.
func isTempName(format, name string) bool {
	if strings.HasPrefix(name, probePrefix) || strings.HasPrefix(name, "."+probePrefix) {
		return true
	}
	// ".NAME.part" and "NAME.part" are the forms of before 2026-12: swept too.
	base, ok := strings.CutSuffix(strings.TrimPrefix(name, "."), ".part")
	if !ok {
		return false
	}
	if i := strings.LastIndexByte(base, '.'); i > 0 && tempTag.MatchString(base[i+1:]) {
		base = base[:i]
	}
	_, parsed := parseArchiveName(format, strings.TrimSuffix(base, sidecarExt))
	return parsed
}

var tempTag = regexp.MustCompile(`^[0-9a-f]{16}$`)

const (
	sidecarExt  = ".sha256"
	probePrefix = "archive-check-probe-"
)

// transfer puts the archive under a temporary name, verifies it there, then renames it: the
// final name only ever holds a whole, verified archive. An archive of that name holding other
// bytes (another dump: a clock set back, a rerun with --date) is never replaced unless the
// operator says so with --replace: it may be the only copy of that night.
func (j *job) transfer(ctx context.Context, d dest, a archiveFile) *failure {
	files, fail := j.list(ctx, d, "transfer", exitTransfer)
	if fail != nil {
		return fail
	}
	size := strconv.FormatInt(a.size, 10)
	for _, f := range files {
		if isTempName(j.conf.NameFormat, f.Name) {
			// Left by an interrupted run; we hold the lock, so no other run is writing it.
			if _, fail := j.do(ctx, d.quick("transfer", "delete", f.Name), exitTransfer); fail == nil {
				j.info("transfer", kv("removed", f.Name), kv("reason", "temporary file left by an interrupted run"))
			}
		}
		if f.Name != a.name {
			continue
		}
		// Only the server's sha256 proves the same bytes; a size match is uploaded again. This
		// host's record says whether the name holds this very archive (a rerun of the day, or a
		// damaged copy of it), which may be replaced, or another dump, which may not.
		res, fail := j.do(ctx, d.long("transfer", "verify", a.name, a.sha256, size), exitTransfer)
		if fail == nil && res.facts["sha256"] == a.sha256 {
			j.ok("transfer", kv("remote", d.remote(a.name)), kv("size", size), kv("sha256", short(a.sha256)), kv("note", "already on the server with the same content; nothing uploaded"))
			return nil
		}
		if fail != nil && res.code != 27 {
			return fail
		}
		held := "other content"
		if sum := res.facts["sha256"]; sum != "" {
			held = "sha256 " + short(sum)
		}
		if readRecords(d.StateDir)[a.name] == a.sha256 {
			j.info("transfer", kv("remote", d.remote(a.name)), kv("note", "this host uploaded this same archive under that name; the server cannot prove the copy intact, so it is uploaded again"))
			continue
		}
		if !j.replace {
			return &failure{check: "transfer", exit: exitTransfer, key: "[archive] name_format",
				cause:  fmt.Sprintf("%s is already on the server and holds %s, not this dump's archive (sha256 %s): it may be the only copy of its night, and is never replaced without the operator's choice", a.name, held, short(a.sha256)),
				detail: fmt.Sprintf("on the server: %s bytes; this archive: %s bytes", strconv.FormatInt(f.Size, 10), size),
				hint:   "a clock set back or a rerun with --date makes an existing day's name; check the date, then either move that archive away on the server or run archive run --replace"}
		}
		j.info("transfer", kv("remote", d.remote(a.name)), kv("held", held), kv("note", "replaced, as asked by --replace"))
	}

	start := time.Now()
	up, fail := j.upload(ctx, d, "transfer", exitTransfer, a.path, a.name, a.sha256, size)
	if fail != nil {
		return fail
	}
	j.ok("transfer", kv("remote", d.remote(a.name)), kv("size", size), kv("sha256", short(a.sha256)), kv("verified", up.verified),
		kv("rename", up.rename), kv("duration", time.Since(start).Round(time.Millisecond)))
	return nil
}

// uploaded is what the protocol's step said of an upload: the temporary name it used, how the
// copy was verified (sha256 on the server, size, or download) and how it replaced the final name
// (atomic, or replace: delete, then rename).
type uploaded struct{ temp, verified, rename string }

// upload puts a local file on the server under its final name through a verified temporary one,
// then proves the final name a regular file of the right size in the folder's listing: a server
// that renamed onto a link, or into another folder, is caught here.
func (j *job) upload(ctx context.Context, d dest, check string, exit int, local, name, sum, size string) (uploaded, *failure) {
	up := uploaded{temp: tempName(name)}
	atomic := protocolOf(d.Protocol).atomicPut
	if atomic { // the server's own rule: the object appears whole, once checked, or not at all
		up.temp = name
	}
	// The cleanup runs even after a signal: a stopped upload must not leave its temporary file.
	cleanup := func() {
		if !atomic { // a final name is never removed: it may hold the last good archive
			j.do(context.WithoutCancel(ctx), d.quick(check, "delete", up.temp), exit)
		}
	}
	res, fail := j.do(ctx, d.long(check, "put", local, up.temp), exit)
	if fail != nil {
		if res.err != nil { // stopped (signal, timeout) before the script's own cleanup
			cleanup()
		}
		return up, fail
	}
	up.rename = res.facts["rename"]
	res, fail = j.do(ctx, d.long(check, "verify", up.temp, sum, size), exit)
	if fail == nil {
		up.verified = res.facts["verified"]
		if !atomic {
			res, fail = j.do(ctx, d.quick(check, "rename", up.temp, name), exit)
			up.rename = res.facts["rename"]
		}
	}
	if fail != nil {
		cleanup()
		return up, fail
	}
	files, fail := j.list(ctx, d, check, exit)
	if fail != nil {
		return up, fail
	}
	for _, f := range files {
		if f.Name == name && strconv.FormatInt(f.Size, 10) == size {
			return up, nil
		}
	}
	return up, &failure{check: check, exit: exit, key: d.key("path"),
		cause: "after the rename, " + name + " is not a regular file of " + size + " bytes in the server's listing (a link, or the rename went elsewhere)",
		hint:  "look at the folder on the server: someone may have planted a link there; the next run uploads again"}
}

// recordChecksum keeps the archive's sha256 twice: in state_dir, and as NAME.sha256 beside the
// archive, so that a restore from a fresh machine can still prove the archive intact. A problem
// makes the run a WARNING: the archive itself is safe.
func (j *job) recordChecksum(ctx context.Context, d dest, a archiveFile) {
	if err := addRecord(d.StateDir, a, j.res.DumpSHA256); err != nil {
		j.warning("record", err.Error(), kv("key", "[archive] state_dir"))
		return
	}
	local := filepath.Join(j.work, a.name+sidecarExt)
	body := a.sha256 + "  " + a.name + "\n"
	if err := os.WriteFile(local, []byte(body), 0o600); err != nil {
		j.warning("record", "cannot write "+local+": "+plainErr(err), kv("key", "[archive] work_dir"))
		return
	}
	if _, fail := j.upload(ctx, d, "record", exitWarning, local, a.name+sidecarExt, sha256Hex(body), strconv.Itoa(len(body))); fail != nil {
		j.warning("record", "cannot put the checksum file beside the archive: "+fail.cause, kv("detail", fail.detail), kv("key", fail.key))
		return
	}
	j.ok("record", kv("remote", d.remote(a.name+sidecarExt)), kv("local", filepath.Join(d.StateDir, recordsFile)))
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// preview is the end of a dry run: what would be uploaded and deleted, with nothing changed.
func (j *job) preview(ctx context.Context, d dest, a archiveFile) {
	j.info("transfer", kv("would_upload", d.remote(a.name)), kv("size", a.size))
	files, fail := j.list(ctx, d, "prune", exitWarning)
	if fail != nil {
		j.warning("prune", "cannot list the archive server: "+fail.cause, kv("detail", fail.detail))
		return
	}
	items, _ := planPrune(withName(files, a.name), j.conf.NameFormat, j.now, d.retention(), a.name)
	for _, it := range items {
		if it.Delete {
			j.info("prune", kv("would_delete", it.Name), kv("date", it.Date.Format("2006-01-02")), kv("reason", it.Reason))
		}
	}
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
func (j *job) list(ctx context.Context, d dest, check string, exit int) ([]remoteFile, *failure) {
	res, fail := j.do(ctx, d.quick(check, "list"), exit)
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

// prune deletes the archives past their retention, one logged line each. A problem makes the run
// a WARNING, never a failure of the good archive.
func (j *job) prune(ctx context.Context, d dest, keep string) {
	c := d.Destination
	files, fail := j.list(ctx, d, "prune", exitWarning)
	if fail != nil {
		j.warning("prune", "cannot list the archive server: "+fail.cause, kv("detail", fail.detail), kv("key", fail.key))
		return
	}
	items, ignored := planPrune(files, j.conf.NameFormat, j.now, c.retention(), keep)
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Name] = true
	}
	// Delete, then prove: a server may answer OK and keep the file (a read-only or foreign file
	// on SMB). What the step said stays, to quote it if the name is still there.
	type removal struct {
		name, archive string // archive: the archive a checksum file belongs to, or itself
		facts         []fact
		said          string
	}
	var removed []removal
	failed := 0
	remove := func(name, archive string, facts ...fact) bool {
		res, fail := j.do(ctx, d.quick("prune", "delete", name), exitWarning)
		if fail != nil {
			failed++
			j.res.PruneFailed = append(j.res.PruneFailed, name)
			j.warning("prune", "cannot delete: "+fail.cause, kv("detail", fail.detail), kv("key", fail.key), kv("name", name))
			return false
		}
		removed = append(removed, removal{name, archive, facts, strings.Join(res.tail, " | ")})
		return true
	}
	for _, it := range items {
		if it.Delete && remove(it.Name, it.Name, kv("date", it.Date.Format("2006-01-02")), kv("reason", it.Reason)) && listed[it.Name+sidecarExt] {
			remove(it.Name+sidecarExt, it.Name, kv("reason", "the checksum file of "+it.Name))
		}
	}
	deleted := 0
	if len(removed) > 0 {
		after, fail := j.list(ctx, d, "prune", exitWarning)
		if fail != nil {
			j.warning("prune", "cannot list the archive server to prove the deletions: "+fail.cause, kv("detail", fail.detail), kv("key", fail.key))
			return
		}
		still := map[string]bool{}
		for _, f := range after {
			still[f.Name] = true
		}
		for _, r := range removed {
			if still[r.name] {
				failed++
				j.res.PruneFailed = append(j.res.PruneFailed, r.name)
				j.warning("prune", "the server answered that it deleted "+shown(r.name)+", but it is still there", kv("detail", r.said),
					kv("key", d.key("path")), kv("hint", "the user must be allowed to delete in path (the file may be read-only or another user's)"), kv("name", r.name))
				continue
			}
			j.res.Pruned = append(j.res.Pruned, r.name)
			j.info("prune", append([]fact{kv("deleted", r.name)}, r.facts...)...)
			if r.name == r.archive {
				deleted++
				removeRecord(c.StateDir, r.name)
			}
		}
	}
	if failed == 0 {
		j.ok("prune", kv("kept", len(items)-deleted), kv("deleted", deleted), kv("keep_days", c.KeepDays), kv("keep_min", c.KeepMin),
			kv("history", yesNo(c.History)), kv("ignored", countIgnored(ignored, listed)))
	}
}

// countIgnored counts the files retention left alone, not counting the checksum files of archives.
func countIgnored(ignored []string, listed map[string]bool) string {
	n := 0
	for _, name := range ignored {
		if base, ok := strings.CutSuffix(name, sidecarExt); !ok || !listed[base] {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
