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
			d := decide(&Conf{OnUnchanged: tc.onUnch, MaxUnchangedDays: tc.maxDays}, prev, tc.sum, now)
			if d.action != tc.action || d.since != tc.since || d.key != tc.key {
				t.Errorf("got action %d since %s key %q, want %d %s %q", d.action, d.since, d.key, tc.action, tc.since, tc.key)
			}
			if d.action == failDump && (d.cause == "" || d.hint == "") {
				t.Errorf("a failure without cause or hint: %+v", d)
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
