package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// result is what a run did, filled by its stages as they go. The mail's subject and summary,
// state_dir/last-run.json, `archive status` and `archive check`'s space estimate are all made
// from it; nothing is read back from the log.
type result struct {
	RunID         string        `json:"run_id"`
	Version       string        `json:"version"`
	Conf          string        `json:"conf"`
	Date          string        `json:"date"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	Outcome       string        `json:"outcome"`
	ExitCode      int           `json:"exit_code"`
	Archive       string        `json:"archive,omitempty"`
	ArchiveSHA256 string        `json:"archive_sha256,omitempty"`
	ArchiveSize   int64         `json:"archive_size,omitempty"`
	DumpSHA256    string        `json:"dump_sha256,omitempty"`
	DumpSize      int64         `json:"dump_size,omitempty"`
	ZipSize       int64         `json:"zip_size,omitempty"`
	Checks        []checkRecord `json:"checks"`
	Destinations  []delivery    `json:"destinations,omitempty"` // with several destinations: each one's outcome
	Pruned        []string      `json:"pruned,omitempty"`
	PruneFailed   []string      `json:"prune_failed,omitempty"`
	Failure       *problem      `json:"failure,omitempty"` // the first failure
	Warning       *problem      `json:"warning,omitempty"` // the first problem that made it a WARNING
	LastSuccess   *time.Time    `json:"last_success,omitempty"`
}

// delivery is what became of the archive on one destination.
type delivery struct {
	Name    string `json:"name"`
	Where   string `json:"where"`
	Outcome string `json:"outcome"` // DELIVERED, UP TO DATE, FAILED, DRY RUN
	Note    string `json:"note,omitempty"`
}

// delivery records one destination's outcome, when the conf has several.
func (r *result) delivery(d dest, outcome, note string) {
	r.Destinations = append(r.Destinations, delivery{d.label(), d.where(), outcome, note})
}

// checkRecord is one check's line: its status and facts, as logged.
type checkRecord struct {
	Check  string            `json:"check"`
	Status string            `json:"status"`
	Facts  map[string]string `json:"facts,omitempty"`
}

// problem is a failure or a warning as the operator reads it.
type problem struct {
	Check  string `json:"check"`
	Cause  string `json:"cause"`
	Detail string `json:"detail,omitempty"`
	Key    string `json:"key,omitempty"`
	Hint   string `json:"hint,omitempty"`
	Rerun  string `json:"rerun,omitempty"`
}

// factsLine is the record's facts as key=value, in key order, leaving out the keys named.
func (c checkRecord) factsLine(leaveOut ...string) string {
	keys := make([]string, 0, len(c.Facts))
	for k := range c.Facts {
		if !slices.Contains(leaveOut, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	facts := make([]string, len(keys))
	for i, k := range keys {
		facts[i] = k + "=" + quoteValue(c.Facts[k])
	}
	return strings.Join(facts, " ")
}

func (r *result) add(status, check string, facts []fact) {
	m := map[string]string{}
	for _, f := range facts {
		if f.v != "" {
			m[f.k] = f.v
		}
	}
	r.Checks = append(r.Checks, checkRecord{check, status, m})
}

func outcomeOf(code int) string {
	switch code {
	case exitOK:
		return "SUCCESS"
	case exitWarning:
		return "WARNING"
	}
	return "FAILURE"
}

const lastRunFile = "last-run.json"

// save writes last-run.json. A failure to write it is logged, never fatal: it is a report, not
// the state.
func (r *result) save(conf *Conf, log *logger, code int, file string) {
	r.Finished, r.Outcome, r.ExitCode = time.Now(), outcomeOf(code), code
	if code == exitOK {
		r.LastSuccess = &r.Finished
	} else if prev, err := readResult(conf.StateDir, file); err == nil {
		r.LastSuccess = prev.LastSuccess
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := writeFileAtomic(conf.StateDir, file, append(data, '\n')); err != nil {
		log.warning("state", kv("cause", err.Error()), kv("key", "[archive] state_dir"))
	}
}

func readLastRun(dir string) (*result, error) { return readResult(dir, lastRunFile) }

// readResult reads last-run.json, or last-verify.json.
func readResult(dir, file string) (*result, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	var r result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %v", filepath.Join(dir, file), err)
	}
	return &r, nil
}

// neededSpace is what the last run held at most in work_dir: the zip, the dump and the archive
// (the zip is removed only after extraction), with a tenth more for growth; 0 when unknown.
func neededSpace(dir string) int64 {
	r, err := readLastRun(dir)
	if err != nil || r.ZipSize == 0 {
		return 0
	}
	archive := r.ArchiveSize
	if archive == 0 {
		archive = r.ZipSize
	}
	return (r.ZipSize + r.DumpSize + archive) * 11 / 10
}
