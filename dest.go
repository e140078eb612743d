package main

import (
	"context"
	"fmt"
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
	env := []string{"ARCHIVE_DEST_HOST=" + c.Host, "ARCHIVE_DEST_USER=" + c.User, "ARCHIVE_DEST_PATH=" + c.DestPath,
		"ARCHIVE_DEST_TIMEOUT=" + secs(c.DestTimeout)}
	if c.Port != 0 {
		env = append(env, "ARCHIVE_DEST_PORT="+strconv.Itoa(c.Port))
	}
	if c.IdentityFile != "" {
		env = append(env, "ARCHIVE_DEST_IDENTITY_FILE="+c.IdentityFile)
	}
	if c.KnownHosts != "" {
		env = append(env, "ARCHIVE_DEST_KNOWN_HOSTS="+c.KnownHosts)
	}
	return env
}

// where names the destination for the log.
func (d dest) where() string {
	c := d.conf
	return fmt.Sprintf("%s://%s@%s:%d/%s", c.Protocol, c.User, c.Host, c.Port, strings.TrimPrefix(c.DestPath, "/"))
}

func (d dest) remote(name string) string { return strings.TrimSuffix(d.where(), "/") + "/" + name }

func (d dest) call(check string, exit int, timeout time.Duration, args ...string) step {
	return step{check: check, script: d.script(), args: args, env: d.env(), timeout: timeout, causes: destCauses}
}

// tempName is where an upload lands before its rename: hidden, and never a name retention parses.
func tempName(name string) string { return "." + name + ".part" }

func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, archiveExt+".part")
}

// transfer puts the archive under a temporary name, verifies it there, then renames it: the
// final name only ever holds a whole, verified archive.
func (r *run) transfer(ctx context.Context, d dest, local, name, sum, size string) *failure {
	c := r.conf
	files, fail := r.list(ctx, d, "transfer", exitTransfer)
	if fail != nil {
		return fail
	}
	for _, f := range files {
		if isTempName(f.Name) {
			// Left by an interrupted run; we hold the lock, so no other run is writing it.
			if _, fail := r.do(ctx, d.call("transfer", exitTransfer, c.DestTimeout, "delete", f.Name), exitTransfer); fail == nil {
				r.log.info("transfer", kv("removed", f.Name), kv("reason", "temporary file left by an interrupted run"))
			}
		}
		if f.Name != name {
			continue
		}
		// Today's name is already there: the same bytes need no upload; others are replaced.
		res, fail := r.do(ctx, d.call("transfer", exitTransfer, c.TransferTimeout, "verify", name, sum, size), exitTransfer)
		if fail == nil {
			r.log.ok("transfer", kv("remote", d.remote(name)), kv("size", size), kv("sha256", short(sum)), kv("note", "already on the server with the same content; nothing uploaded"))
			return nil
		}
		if res.code != 27 {
			return fail
		}
		r.log.info("transfer", kv("remote", d.remote(name)), kv("note", "a different file has this name; it will be replaced atomically"))
	}

	start := time.Now()
	tmp := tempName(name)
	if _, fail := r.do(ctx, d.call("transfer", exitTransfer, c.TransferTimeout, "put", local, tmp), exitTransfer); fail != nil {
		return fail
	}
	res, fail := r.do(ctx, d.call("transfer", exitTransfer, c.TransferTimeout, "verify", tmp, sum, size), exitTransfer)
	if fail != nil {
		r.do(ctx, d.call("transfer", exitTransfer, c.DestTimeout, "delete", tmp), exitTransfer)
		return fail
	}
	if _, fail := r.do(ctx, d.call("transfer", exitTransfer, c.DestTimeout, "rename", tmp, name), exitTransfer); fail != nil {
		r.do(ctx, d.call("transfer", exitTransfer, c.DestTimeout, "delete", tmp), exitTransfer)
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
	}
	facts := []fact{kv("kept", len(items)-deleted), kv("deleted", deleted), kv("keep_days", c.KeepDays), kv("keep_min", c.KeepMin), kv("history", yesNo(c.History))}
	if len(ignored) > 0 {
		facts = append(facts, kv("ignored", len(ignored)))
	}
	if ok {
		r.log.ok("prune", facts...)
	}
	return ok
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
