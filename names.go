package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// An archive's name carries its date, so retention needs nothing but a listing of the server:
// no local index that could drift from what is really there.

const archiveExt = ".tgz"

// encryptedExt follows archiveExt on an archive encrypted with age ([archive] encrypt_to): a
// folder may hold both kinds, after encryption was turned on or off, and retention reads both.
const encryptedExt = ".age"

var nameFormatChars = regexp.MustCompile(`^[A-Za-z0-9._%-]+$`)

// checkNameFormat accepts formats that turn into a file name and back into a date without
// ambiguity: %Y, %m and %d exactly once each, and plain file-name characters around them.
func checkNameFormat(format string) error {
	if !nameFormatChars.MatchString(format) {
		return fmt.Errorf("may only hold letters, digits, '.', '_', '-' and %%Y %%m %%d (got %q)", format)
	}
	counts := map[string]int{}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		if i+1 == len(format) {
			return fmt.Errorf("ends with a lone %% (got %q)", format)
		}
		tok := format[i : i+2]
		switch tok {
		case "%Y", "%m", "%d":
			counts[tok]++
		default:
			return fmt.Errorf("knows only %%Y (year), %%m (month) and %%d (day), not %s (got %q)", tok, format)
		}
		i++
	}
	for _, tok := range []string{"%Y", "%m", "%d"} {
		if counts[tok] != 1 {
			return fmt.Errorf("must hold %%Y, %%m and %%d once each, so that a name gives back its date (got %q)", format)
		}
	}
	// The proof that retention will read its names back; names_test does it over ten years.
	probe := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	if d, ok := parseArchiveName(format, archiveName(format, probe)); !ok || !d.Equal(probe) {
		return fmt.Errorf("makes names that do not read back as their date (got %q)", format)
	}
	return nil
}

// archiveName is the file name of the archive for day d: the customer's AAAADDMM is "%Y%d%m".
func archiveName(format string, d time.Time) string {
	r := strings.NewReplacer("%Y", d.Format("2006"), "%m", d.Format("01"), "%d", d.Format("02"))
	return r.Replace(format) + archiveExt
}

// parseArchiveName returns the day a name was made for, or false for any name the format did not
// make: such files are never touched. The format's fields are read by their fixed widths, never by
// time.Parse, whose layout would take a digit of the format's own text for a field ("-v2": day 2).
func parseArchiveName(format, name string) (time.Time, bool) {
	m := nameRegexp(format).FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	fields := map[string]int{}
	for i, tok := range fieldRE.FindAllString(format, -1) {
		fields[tok], _ = strconv.Atoi(m[i+1])
	}
	d := time.Date(fields["%Y"], time.Month(fields["%m"]), fields["%d"], 0, 0, 0, 0, time.UTC)
	// 2026-02-30 would come back as 2026-03-02: only a real day makes its own name.
	if archiveName(format, d) != strings.TrimSuffix(name, encryptedExt) {
		return time.Time{}, false
	}
	return d, true
}

// nameRegexp matches exactly the names format makes: its text as is, four digits for %Y, two for
// %m and %d.
func nameRegexp(format string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	i := 0
	for _, loc := range fieldRE.FindAllStringIndex(format, -1) {
		b.WriteString(regexp.QuoteMeta(format[i:loc[0]]))
		if format[loc[0]:loc[1]] == "%Y" {
			b.WriteString(`([0-9]{4})`)
		} else {
			b.WriteString(`([0-9]{2})`)
		}
		i = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(format[i:]+archiveExt) + `(?:` + regexp.QuoteMeta(encryptedExt) + `)?$`)
	return regexp.MustCompile(b.String())
}

var fieldRE = regexp.MustCompile(`%[Ymd]`)

// remoteFile is one line of a destination's listing.
type remoteFile struct {
	Name string
	Size int64
}

// pruneItem is one archive and what retention decided for it, with the reason in words.
type pruneItem struct {
	remoteFile
	Date   time.Time
	Age    int // days before today
	Delete bool
	Reason string
}

// retention holds a destination's retention keys, and the archives this host recorded there.
type retention struct {
	History  bool
	KeepDays int
	KeepMin  int
	// Recorded are the names this host uploaded and verified (state_dir/archives.sha256): the
	// newest keep_min of them stay beside the newest keep_min names of the listing, so that
	// names planted on the server, or forged in a listing, never push a real archive out, and a
	// new backup host (no records yet) keeps what it finds.
	Recorded map[string]string
	// Damaged are the archives the last archive verify found missing or altered: they count as
	// missing for keep_min, and are never deleted (the operator looks at them).
	Damaged map[string]bool
}

// planPrune decides, for every file on the server whose name the format made, whether it goes.
// The newest keep_min archives, the newest keep_min recorded ones and the one just uploaded always
// stay; with history off, the newest and the newest recorded. Names that do not parse come back in ignored, untouched.
func planPrune(files []remoteFile, format string, today time.Time, r retention, keep string) (items []pruneItem, ignored []string) {
	today = day(today)
	for _, f := range files {
		d, ok := parseArchiveName(format, f.Name)
		if !ok {
			ignored = append(ignored, f.Name)
			continue
		}
		items = append(items, pruneItem{remoteFile: f, Date: d, Age: int(today.Sub(d).Hours() / 24)})
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].Date.Equal(items[j].Date) {
			return items[i].Date.After(items[j].Date)
		}
		return items[i].Name > items[j].Name
	})
	keepMin := r.KeepMin
	if !r.History {
		keepMin = 1
	}
	recorded, sound := 0, 0 // recorded and undamaged archives so far, the item included
	for i := range items {
		it := &items[i]
		_, rec := r.Recorded[it.Name]
		damaged := r.Damaged[it.Name] && it.Name != keep
		if rec = (rec || it.Name == keep) && !damaged; rec {
			recorded++
		}
		if !damaged {
			sound++
		}
		switch {
		case it.Name == keep:
			it.Reason = "the archive of this run"
		case damaged:
			it.Reason = "found missing or altered by archive verify: kept, and not counted for keep_min"
		case sound <= keepMin:
			it.Reason = fmt.Sprintf("among the %d newest (keep_min)", keepMin)
			if !r.History {
				it.Reason = "the newest (history = no)"
			}
		case rec && recorded <= keepMin:
			it.Reason = fmt.Sprintf("among the %d newest this host uploaded (keep_min)", keepMin)
			if !r.History {
				it.Reason = "the newest this host uploaded (history = no)"
			}
		case !r.History:
			it.Delete, it.Reason = true, "history = no keeps only the newest"
		case it.Age > r.KeepDays:
			it.Delete, it.Reason = true, fmt.Sprintf("%d days old, past keep_days = %d", it.Age, r.KeepDays)
		default:
			it.Reason = fmt.Sprintf("%d days old, within keep_days = %d", it.Age, r.KeepDays)
		}
	}
	return items, ignored
}

// day is midnight UTC of t's calendar day, so that ages are whole days whatever the time zone.
func day(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// retention is the destination's: its keys, and its own records and damaged list.
func (d *Destination) retention() retention {
	return retention{d.History, d.KeepDays, d.KeepMin, readRecords(d.StateDir), readDamaged(d.StateDir)}
}
