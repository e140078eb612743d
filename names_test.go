package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestArchiveNameFollowsTheFormat(t *testing.T) {
	d := time.Date(2026, 11, 28, 2, 30, 0, 0, time.Local)
	for format, want := range map[string]string{
		"%Y%d%m":        "20262811.tgz", // the customer's AAAADDMM
		"%Y%m%d":        "20261128.tgz",
		"dump-%Y-%m-%d": "dump-2026-11-28.tgz",
	} {
		if got := archiveName(format, d); got != want {
			t.Errorf("archiveName(%q) = %q, want %q", format, got, want)
		}
	}
}

func TestParseArchiveNameAcceptsOnlyWhatTheFormatMakes(t *testing.T) {
	cases := []struct {
		format, name string
		ok           bool
		want         string
	}{
		{"%Y%d%m", "20262811.tgz", true, "2026-11-28"},
		{"%Y%m%d", "20261128.tgz", true, "2026-11-28"},
		{"%Y%d%m", "20261128.tgz", false, ""}, // month 28 does not exist
		{"%Y%m%d", "20261301.tgz", false, ""},
		{"%Y%m%d", "20261128.tgz.part", false, ""},
		{"%Y%m%d", ".20261128.tgz.part", false, ""},
		{"%Y%m%d", "2026112.tgz", false, ""},
		{"%Y%m%d", "notes.txt", false, ""},
		{"dump-%Y-%m-%d", "dump-2026-02-03.tgz", true, "2026-02-03"},
		{"dump-%Y-%m-%d", "dump-2026-2-3.tgz", false, ""},
	}
	for _, c := range cases {
		d, ok := parseArchiveName(c.format, c.name)
		if ok != c.ok || (ok && d.Format("2006-01-02") != c.want) {
			t.Errorf("parseArchiveName(%q, %q) = %v, %v; want %v, %v", c.format, c.name, d.Format("2006-01-02"), ok, c.want, c.ok)
		}
	}
}

// Every day of ten years, for formats a technician would write: the name made reads back as its
// day, and no other day's name is taken for it.
func TestEveryAcceptedFormatReadsItsNamesBackOverTenYears(t *testing.T) {
	for _, format := range []string{"%Y%d%m", "%Y%m%d", "%d%m%Y", "%m%d%Y", "dump-%Y-%m-%d", "%Y%m%d-v2", "v2_%d.%m.%Y", "db1%Y%m%d0", "%Y-%d-%m.2"} {
		if err := checkNameFormat(format); err != nil {
			t.Errorf("checkNameFormat(%q) = %v", format, err)
			continue
		}
		seen := map[string]bool{}
		for d := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2034; d = d.AddDate(0, 0, 1) {
			name := archiveName(format, d)
			got, ok := parseArchiveName(format, name)
			if !ok || !got.Equal(d) {
				t.Fatalf("format %q: %s made %q, read back as %v, %v", format, d.Format("2006-01-02"), name, got.Format("2006-01-02"), ok)
			}
			if seen[name] {
				t.Fatalf("format %q: two days make %q", format, name)
			}
			seen[name] = true
		}
	}
}

func TestCheckNameFormatRejectsAmbiguousFormats(t *testing.T) {
	for format, bad := range map[string]bool{
		"%Y%d%m": false, "%Y%m%d": false, "db_%Y.%m.%d": false,
		"%Y%m": true, "%Y%m%d%d": true, "%Y%m%d%H": true, "%Y/%m/%d": true, "%Y %m %d": true, "": true, "%Y%m%d%": true,
	} {
		if err := checkNameFormat(format); (err != nil) != bad {
			t.Errorf("checkNameFormat(%q) = %v, want error %v", format, err, bad)
		}
	}
}

func TestPlanPrune(t *testing.T) {
	today := time.Date(2026, 11, 28, 2, 0, 0, 0, time.Local)
	files := []remoteFile{{"20261128.tgz", 1}, {"20261120.tgz", 1}, {"20261001.tgz", 1}, {"20260901.tgz", 1},
		{"20260801.tgz", 1}, {"notes.txt", 1}, {".20261127.tgz.part", 1}}
	cases := []struct {
		name    string
		r       retention
		deleted string
	}{
		{"by age", retention{History: true, KeepDays: 30, KeepMin: 2}, "20260801.tgz,20260901.tgz,20261001.tgz"},
		{"keep_min holds old ones", retention{History: true, KeepDays: 30, KeepMin: 4}, "20260801.tgz"},
		{"all old: keep_min still holds", retention{History: true, KeepDays: 0, KeepMin: 3}, "20260801.tgz,20260901.tgz"},
		{"history no", retention{History: false, KeepDays: 30, KeepMin: 7}, "20260801.tgz,20260901.tgz,20261001.tgz,20261120.tgz"},
		{"nothing old enough", retention{History: true, KeepDays: 365, KeepMin: 1}, ""},
	}
	for _, c := range cases {
		items, ignored := planPrune(files, "%Y%m%d", today, c.r, "20261128.tgz")
		var del []string
		for _, it := range items {
			if it.Delete {
				del = append([]string{it.Name}, del...)
			}
			if it.Name == "20261128.tgz" && it.Delete {
				t.Errorf("%s: the archive of this run would be deleted", c.name)
			}
		}
		if got := strings.Join(del, ","); got != c.deleted {
			t.Errorf("%s: deletes %q, want %q", c.name, got, c.deleted)
		}
		if strings.Join(ignored, ",") != "notes.txt,.20261127.tgz.part" {
			t.Errorf("%s: ignored %v", c.name, ignored)
		}
	}
}

// Names planted on the server (or forged in a listing) newer than the real archives take the
// keep_min places of the listing, never those of the archives this host recorded at upload.
func TestPlantedNamesNeverPushRecordedArchivesOut(t *testing.T) {
	today := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	files := []remoteFile{{"20261128.tgz", 1}, {"20991231.tgz", 1}, {"20991230.tgz", 1}, {"20261001.tgz", 1}, {"20260901.tgz", 1}, {"20260801.tgz", 1}}
	recs := map[string]string{"20261128.tgz": "a", "20261001.tgz": "b", "20260901.tgz": "c", "20260801.tgz": "d"}
	for _, c := range []struct {
		r       retention
		deleted string
	}{
		{retention{History: true, KeepDays: 30, KeepMin: 3, Recorded: recs}, "20260801.tgz"},
		{retention{History: false, KeepMin: 3, Recorded: recs}, "20991230.tgz,20261001.tgz,20260901.tgz,20260801.tgz"},
		{retention{History: true, KeepDays: 30, KeepMin: 3}, "20260901.tgz,20260801.tgz,20261001.tgz"},
	} {
		items, _ := planPrune(files, "%Y%m%d", today, c.r, "20261128.tgz")
		var del []string
		for _, it := range items {
			if it.Delete {
				del = append(del, it.Name)
			}
		}
		sort.Strings(del)
		want := strings.Split(c.deleted, ",")
		sort.Strings(want)
		if strings.Join(del, ",") != strings.Join(want, ",") {
			t.Errorf("%+v: deletes %v, want %v", c.r, del, want)
		}
	}
}

func TestPlanPruneNeverDeletesThisRunsArchiveEvenWhenNewerNamesExist(t *testing.T) {
	today := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	files := []remoteFile{{"20261128.tgz", 1}, {"20271201.tgz", 1}}
	items, _ := planPrune(files, "%Y%m%d", today, retention{History: false, KeepDays: 0, KeepMin: 1}, "20261128.tgz")
	for _, it := range items {
		if it.Delete {
			t.Errorf("deletes %s (%s)", it.Name, it.Reason)
		}
	}
}

func TestTempNamesAreVisibleAndSweptInBothForms(t *testing.T) {
	a, b := tempName("20261128.tgz"), tempName("20261128.tgz")
	if !regexp.MustCompile(`^20261128\.tgz\.[0-9a-f]{16}\.part$`).MatchString(a) || a == b {
		t.Errorf("tempName = %q, then %q: want NAME.<16 random hex>.part, never twice the same", a, b)
	}
	for name, want := range map[string]bool{a: true, "20261128.tgz.part": true, "20261128.tgz.sha256.0123456789abcdef.part": true,
		"20261128.tgz.0123456789abcdeX.part": false, "notes.0123456789abcdef.part": false, ".20261128.tgz.part": true, "20261128.tgz.sha256.part": true,
		"archive-check-probe-x1.part": true, "20261128.tgz": false, "notes.part": false, "2026112.tgz.part": false} {
		if got := isTempName("%Y%m%d", name); got != want {
			t.Errorf("isTempName(%q) = %v, want %v", name, got, want)
		}
	}
}

// An archive the last verify found missing or altered counts as missing for keep_min, and is
// never deleted: the older good ones stay in its place.
func TestDamagedArchivesDoNotCountForKeepMin(t *testing.T) {
	today := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	files := []remoteFile{{"20261128.tgz", 1}, {"20261127.tgz", 1}, {"20261001.tgz", 1}, {"20260901.tgz", 1}, {"20260801.tgz", 1}}
	r := retention{History: true, KeepDays: 0, KeepMin: 3, Damaged: map[string]bool{"20261127.tgz": true}}
	items, _ := planPrune(files, "%Y%m%d", today, r, "20261128.tgz")
	var del []string
	for _, it := range items {
		if it.Delete {
			del = append(del, it.Name)
		}
	}
	if got := strings.Join(del, ","); got != "20260801.tgz" {
		t.Errorf("deletes %q, want 20260801.tgz only (20261127 damaged: kept, not counted)", got)
	}
}
