package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecideTheUnchangedDumpPolicy(t *testing.T) {
	now := time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)
	prev := state{SHA256: "aaa", Date: "2026-11-27", Name: "20262711.tgz", Changed: "2026-11-26"}
	for _, tc := range []struct {
		name       string
		onUnch     string
		maxDays    int
		sum        string
		action     int
		since, key string
	}{
		{"a new dump is archived, changed today", "skip", 3, "bbb", archiveDump, "2026-11-28", ""},
		{"a first run is archived", "fail", 3, "bbb", archiveDump, "2026-11-28", ""},
		{"unchanged is skipped", "skip", 3, "aaa", skipDump, "2026-11-26", ""},
		{"unchanged fails with on_unchanged = fail", "fail", 0, "aaa", failDump, "2026-11-26", "[archive] on_unchanged"},
		{"unchanged is archived again with on_unchanged = archive", "archive", 0, "aaa", archiveDump, "2026-11-26", ""},
		{"unchanged for max_unchanged_days fails: the source looks stuck", "skip", 2, "aaa", failDump, "2026-11-26", "[archive] max_unchanged_days"},
		{"stuck even with on_unchanged = archive", "archive", 2, "aaa", failDump, "2026-11-26", "[archive] max_unchanged_days"},
		{"one day short of max_unchanged_days is still a skip", "skip", 3, "aaa", skipDump, "2026-11-26", ""},
		{"max_unchanged_days = 0 never fails", "skip", 0, "aaa", skipDump, "2026-11-26", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(&Conf{OnUnchanged: tc.onUnch, MaxUnchangedDays: tc.maxDays, MaxShrink: 100}, prev, tc.sum, 100, now, false)
			if d.action != tc.action || d.since != tc.since || d.key != tc.key {
				t.Errorf("got action %d since %s key %q, want %d %s %q", d.action, d.since, d.key, tc.action, tc.since, tc.key)
			}
			if d.action == failDump && (d.cause == "" || d.hint == "") {
				t.Errorf("a failure without cause or hint: %+v", d)
			}
		})
	}
}

// max_shrink: a dump that lost more than that share of the last archived one's size fails
// "changed", unless the operator accepts it once; a state without a size (before 2026-12) has no
// guard.
func TestDecideTheShrinkGuard(t *testing.T) {
	now := time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)
	prev := state{SHA256: "aaa", Size: "1200000", Date: "2026-11-27", Name: "20262711.tgz", Changed: "2026-11-27"}
	for _, tc := range []struct {
		name      string
		size      int64
		shrink    int
		accept    bool
		noSize    bool
		action    int
		key, note string
	}{
		{"an error text after a 1.2 MB dump fails", 47, 50, false, false, failDump, "[source] max_shrink", "99% (47 bytes now, 1200000 bytes in 20262711.tgz"},
		{"half the size is the limit, still archived", 600000, 50, false, false, archiveDump, "", ""},
		{"one byte below the limit fails", 599999, 50, false, false, failDump, "[source] max_shrink", "50% (599999 bytes now"},
		{"a dump that grew is archived", 5000000, 50, false, false, archiveDump, "", ""},
		{"--accept-shrink archives it, and says how much", 47, 50, true, false, archiveDump, "", "99% (47 bytes now, 1200000 bytes in 20262711.tgz"},
		{"max_shrink = 100 accepts any shrink", 47, 100, false, false, archiveDump, "", ""},
		{"no size recorded: no guard", 47, 50, false, true, archiveDump, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := prev
			if tc.noSize {
				p.Size = ""
			}
			d := decide(&Conf{OnUnchanged: "skip", MaxShrink: tc.shrink}, p, "bbb", tc.size, now, tc.accept)
			if d.action != tc.action || d.key != tc.key || !strings.Contains(d.shrank, tc.note) || (tc.note == "") != (d.shrank == "") {
				t.Errorf("got action %d key %q shrank %q, want %d %q %q", d.action, d.key, d.shrank, tc.action, tc.key, tc.note)
			}
		})
	}
}

// A state file of the name it had before (.prevChecksum) is read, and replaced by the new one.
func TestStateFileOfTheOldNameIsReadThenReplaced(t *testing.T) {
	dir := t.TempDir()
	old := "sha256=" + strings.Repeat("a", 64) + "\ndate=2026-11-27\nname=20262711.tgz\n"
	os.WriteFile(filepath.Join(dir, oldStateFile), []byte(old), 0o600)
	s, err := readState(dir)
	if err != nil || s.Name != "20262711.tgz" || s.Changed != "2026-11-27" {
		t.Fatalf("readState: %+v, %v", s, err)
	}
	if err := writeState(dir, s); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, oldStateFile)) || !exists(filepath.Join(dir, stateFile)) {
		t.Errorf("after writeState: old file there %v, new file there %v", exists(filepath.Join(dir, oldStateFile)), exists(filepath.Join(dir, stateFile)))
	}
}
