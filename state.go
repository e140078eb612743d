package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The state file records the last dump that reached the archive server: its sha256, day, archive
// name and sha256, the day it last changed, and its zip's validators. It moves on only after a
// verified transfer, so a failed night is retried instead of being taken for "unchanged".
const stateFile = "last-archived"

// oldStateFile is its name before 2026-12: read when the new one is not there yet, removed once
// the new one is written.
const oldStateFile = ".prevChecksum"

type state struct {
	SHA256        string // of the SQL dump
	Size          string // of the SQL dump, in bytes: max_shrink compares with it
	Date          string // the run's day, YYYY-MM-DD
	Name          string // the archive's name
	ArchiveSHA256 string // of the .tgz as uploaded
	Changed       string // the day the dump last changed, YYYY-MM-DD
	// The strong ETag of the zip whose dump this is, sent back as If-None-Match: a 304 answer
	// means the same zip, so the same dump.
	ETag string
}

// fields are the state file's keys, in the order they are written, and what each holds.
func (s *state) fields() []stateField {
	return []stateField{{"sha256", &s.SHA256}, {"size", &s.Size}, {"date", &s.Date}, {"name", &s.Name}, {"archive_sha256", &s.ArchiveSHA256},
		{"changed", &s.Changed}, {"etag", &s.ETag}}
}

type stateField struct {
	key string
	val *string
}

var hexSum = regexp.MustCompile(`^[0-9a-f]{64}$`)

// readState returns the zero state on a first run (no file). A file that exists but cannot be
// read or understood is an error: guessing "changed" could hide a broken state dir forever.
func readState(dir string) (state, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		path = filepath.Join(dir, oldStateFile)
		data, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("cannot read state file %q: %v", path, plainErr(err))
	}
	var s state
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, "=")
		for _, f := range s.fields() {
			if f.key == k {
				*f.val = v
			}
		}
	}
	if !hexSum.MatchString(s.SHA256) {
		return state{}, fmt.Errorf("state file %q is corrupt: no valid sha256= line", path)
	}
	if s.Changed == "" {
		s.Changed = s.Date
	}
	return s, nil
}

// writeState replaces the state file atomically.
func writeState(dir string, s state) error {
	var b strings.Builder
	b.WriteString("# written by archive after a verified transfer; delete to archive the next dump as new\n")
	for _, f := range s.fields() {
		b.WriteString(f.key + "=" + *f.val + "\n")
	}
	body := b.String()
	if err := writeFileAtomic(dir, stateFile, []byte(body)); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, oldStateFile))
	return nil
}

// writeFileAtomic replaces dir/name: write a temporary file, fsync, rename, fsync the folder.
func writeFileAtomic(dir, name string, body []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	// A fresh file, never an entry found there (a link would be written through).
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write %q: %v", tmp, plainErr(err))
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %q: %v", path, plainErr(err))
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var errLocked = errors.New("another archive run is active")

// lockFile is an flock on state_dir/archive.lock. The kernel drops it when the process dies, so
// a run killed with -9 never blocks the next one.
type lockFile struct{ f *os.File }

func takeLock(dir string) (*lockFile, error) {
	if err := privateDir(dir, "state_dir"); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "archive.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file %q: %v", path, plainErr(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := lockHolder(path)
			if pid, err := strconv.Atoi(holder); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
				// Its steps inherit the lock: one still running keeps it until it ends.
				holder += ", no longer running: a step it started still holds the lock until its own timeout"
			}
			return nil, fmt.Errorf("%w (pid %s, %q); this run leaves it alone", errLocked, holder, path)
		}
		return nil, fmt.Errorf("cannot lock %q: %v", path, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	f.WriteAt(pid, 0)
	f.Truncate(int64(len(pid)))
	return &lockFile{f}, nil
}

// lockHolder reads the pid the holder wrote; a run that has just taken the lock may not have
// written it yet, so it is read again a moment later.
func lockHolder(path string) string {
	for i := 0; i < 10; i++ {
		if data, _ := os.ReadFile(path); len(strings.TrimSpace(string(data))) > 0 {
			return strings.TrimSpace(string(data))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unknown"
}

func (l *lockFile) release() {
	l.f.Truncate(0)
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// privateDir makes dir (0700) when it is missing, and refuses one that another user could change:
// dir itself writable by group or others, or a folder above it writable by others without the
// sticky bit (/tmp has it), or owned by another user than root or this one. Another user could
// otherwise swap the run's folder (and read the dump) or plant a link as a file archive writes.
func privateDir(dir, key string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s %q: %v", key, dir, plainErr(err))
	}
	me := uint32(os.Geteuid())
	for p, top := dir, true; ; p, top = filepath.Dir(p), false {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cannot use %s %q: %v", key, dir, plainErr(err))
		}
		sys := st.Sys().(*syscall.Stat_t)
		mode := st.Mode()
		switch {
		case top && mode.Perm()&0o022 != 0:
			return fmt.Errorf("%s %q is writable by group or others (mode %04o): another user could read the dump or plant links there; chmod 700 it", key, dir, mode.Perm())
		case !top && mode.Perm()&0o002 != 0 && mode&os.ModeSticky == 0:
			return fmt.Errorf("%s %q is inside %q, which others can write (mode %04o, no sticky bit): another user could swap the folder; chmod o-w it", key, dir, p, mode.Perm())
		case sys.Uid != 0 && sys.Uid != me:
			return fmt.Errorf("%s %q: %q belongs to another user (uid %d), who could swap it; give it to this user or root", key, dir, p, sys.Uid)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// workDir is the run's own folder under work_dir, removed whatever happens.
type workDir struct{ dir string }

const workPrefix = "run-"

// newWorkDir removes what a killed run left (we hold the lock, so no run is using it) and makes
// this run's folder, private to the user.
func newWorkDir(base, runID string, log *logger) (*workDir, error) {
	if err := privateDir(base, "work_dir"); err != nil {
		return nil, err
	}
	old, _ := filepath.Glob(filepath.Join(base, workPrefix+"*"))
	for _, d := range old {
		if err := os.RemoveAll(d); err != nil {
			log.warning("cleanup", kv("cause", fmt.Sprintf("cannot remove leftover %q: %v", d, plainErr(err))))
		} else {
			log.info("cleanup", kv("removed", d), kv("reason", "left by an interrupted run"))
		}
	}
	dir := filepath.Join(base, workPrefix+runID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create a folder in work_dir %q: %v", base, plainErr(err))
	}
	probe := filepath.Join(dir, ".probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("cannot write in work_dir %q: %v", base, plainErr(err))
	}
	os.Remove(probe)
	return &workDir{dir}, nil
}

func (w *workDir) remove(log *logger) {
	if err := os.RemoveAll(w.dir); err != nil {
		log.warning("cleanup", kv("cause", fmt.Sprintf("cannot remove %q: %v", w.dir, plainErr(err))))
	}
}

// The sha256 of every archive uploaded, as sha256sum writes them, so that restore can prove an
// archive intact even if the server's own NAME.sha256 beside it were altered with it.
const recordsFile = "archives.sha256"

func readRecords(dir string) map[string]string {
	recs := map[string]string{}
	data, _ := os.ReadFile(filepath.Join(dir, recordsFile))
	for _, l := range strings.Split(string(data), "\n") {
		if sum, name, ok := strings.Cut(l, "  "); ok && hexSum.MatchString(sum) {
			recs[name] = sum
		}
	}
	return recs
}

// archiveFacts are what else this host knows of an archive it uploaded: its size, for a scrub
// on a server that cannot hash, and its dump's sha256, for a restore to prove the dump itself
// (an encrypted archive's sha256 says nothing of what is inside). One line each in
// state_dir/archives.facts: NAME SIZE DUMP_SHA256.
const factsFile = "archives.facts"

type archiveFacts struct {
	size int64
	dump string
}

func readFacts(dir string) map[string]archiveFacts {
	out := map[string]archiveFacts{}
	data, _ := os.ReadFile(filepath.Join(dir, factsFile))
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 3 && hexSum.MatchString(f[2]) {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			out[f[0]] = archiveFacts{n, f[2]}
		}
	}
	return out
}

func writeFacts(dir string, facts map[string]archiveFacts) error {
	return writeByName(dir, factsFile, facts, func(name string, f archiveFacts) string { return fmt.Sprintf("%s %d %s", name, f.size, f.dump) })
}

// addRecord remembers an archive this host uploaded and verified.
func addRecord(dir string, a archiveFile, dumpSHA256 string) error {
	recs := readRecords(dir)
	recs[a.name] = a.sha256
	if err := writeRecords(dir, recs); err != nil {
		return err
	}
	facts := readFacts(dir)
	facts[a.name] = archiveFacts{a.size, dumpSHA256}
	return writeFacts(dir, facts)
}

// removeRecord forgets a pruned archive; a failure only leaves a line too many.
func removeRecord(dir, name string) {
	recs := readRecords(dir)
	if _, ok := recs[name]; ok {
		delete(recs, name)
		writeRecords(dir, recs)
	}
	if facts := readFacts(dir); facts[name] != (archiveFacts{}) {
		delete(facts, name)
		writeFacts(dir, facts)
	}
}

func writeRecords(dir string, recs map[string]string) error {
	return writeByName(dir, recordsFile, recs, func(name, sum string) string { return sum + "  " + name })
}

// writeByName replaces a file of one line per archive, sorted by name.
func writeByName[T any](dir, file string, m map[string]T, line func(name string, v T) string) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(line(n, m[n]) + "\n")
	}
	return writeFileAtomic(dir, file, []byte(b.String()))
}
