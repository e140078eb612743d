package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func writeTestConf(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"id", "known_hosts", "ca.pem"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
	}
	p := filepath.Join(dir, "archive.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConf = `[source]
url = https://db.example.org/dump.zip
expected_file = dump.sql
[destination]
host = backup.example.org
user = archive
identity_file = id
known_hosts = known_hosts
`

func TestLoadConfDefaultsAndRelativePaths(t *testing.T) {
	p := writeTestConf(t, goodConf+"[archive]\nwork_dir = work\n[source]\nmax_size = 2G\n")
	c, err := loadConf(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.WorkDir != filepath.Join(dir, "work") || c.IdentityFile != filepath.Join(dir, "id") {
		t.Errorf("relative paths not taken from the conf's folder: %q %q", c.WorkDir, c.IdentityFile)
	}
	if c.NameFormat != "%Y%d%m" || c.Port != 22 || c.KeepMin != 7 || !c.History || c.OnUnchanged != "skip" {
		t.Errorf("defaults: %+v", c)
	}
	if c.MaxSize != 2<<30 || c.MinSize != 1 {
		t.Errorf("sizes: max %d min %d", c.MaxSize, c.MinSize)
	}
}

func TestLoadConfReportsEveryProblemWithSectionKeyAndLine(t *testing.T) {
	p := writeTestConf(t, `[source]
url = http://db.example.org/dump.zip
expected_file = exports/dump.sql
timeout = soon
[archive]
on_unchanged = maybe
name_format = %Y%m
colour = blue
[retension]
keep_days = 3
[destination]
protocol = gopher
`)
	_, err := loadConf(p)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`[source] url (line 2): must start with https://`,
		`[source] expected_file (line 3): must be a file name without folders`,
		`[source] timeout (line 4): must be a whole number`,
		`[archive] on_unchanged (line 6): must be one of skip, fail, archive`,
		`[archive] name_format (line 7): must hold %Y, %m and %d once each`,
		`[archive] colour (line 8): unknown key`,
		`[retension] (line 9): unknown section`,
		`[destination] protocol (line 12): must be one of`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestLoadConfRequiresTheKeysOfTheChosenProtocolOnly(t *testing.T) {
	for proto, want := range map[string][]string{
		"sftp":   {"[destination] host: is required", "[destination] identity_file: is required", "[destination] known_hosts: is required"},
		"ftps":   {"[destination] host: is required", "[destination] password_file: is required"},
		"webdav": {"[destination] url: is required", "[destination] password_file: is required"},
		"smb":    {"[destination] share: is required", "[destination] password_file: is required"},
	} {
		p := writeTestConf(t, "[source]\nurl = https://h/d.zip\nexpected_file = d.sql\n[destination]\nprotocol = "+proto+"\n")
		_, err := loadConf(p)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: missing %q in %v", proto, w, err)
			}
		}
	}
	p := writeTestConf(t, "[source]\nurl = https://h/d.zip\nexpected_file = d.sql\n[destination]\nprotocol = nfs\npath = /mnt/archives\n")
	if _, err := loadConf(p); err != nil {
		t.Errorf("nfs needs only path: %v", err)
	}
}

func TestLoadConfRefusesAKeyGivenTwice(t *testing.T) {
	_, err := loadConf(writeTestConf(t, goodConf+"[source]\nretries = 3\nretries = 4\n"))
	if err == nil || !strings.Contains(err.Error(), "[source] retries (line 11): is given twice (first on line 10)") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadConfTakesValuesAsData(t *testing.T) {
	p := writeTestConf(t, strings.Replace(goodConf, "user = archive", "user = -oProxyCommand=$(touch /tmp/pwned);`id` # x", 1))
	c, err := loadConf(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "-oProxyCommand=$(touch /tmp/pwned);`id` # x" {
		t.Errorf("value altered: %q", c.User)
	}
}

func TestLoadConfMissingFileSaysSo(t *testing.T) {
	_, err := loadConf(filepath.Join(t.TempDir(), "nope.conf"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadConfWarnsAboutReadableSecrets(t *testing.T) {
	p := writeTestConf(t, goodConf)
	os.Chmod(filepath.Join(filepath.Dir(p), "id"), 0o644)
	os.Chmod(p, 0o644)
	c, err := loadConf(p)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.Warnings, "\n")
	if !strings.Contains(all, "identity_file") || !strings.Contains(all, "readable by group or others") {
		t.Errorf("warnings: %q", all)
	}
}

// Every code a cause table explains is documented in its script's header, where an operator
// running the step by hand reads it.
func TestStepExitCodesAreExplainedAndDocumented(t *testing.T) {
	for script, table := range map[string]map[int]cause{"fetch.sh": fetchCauses, "unpack.sh": unpackCauses, "pack.sh": packCauses,
		"dest-sftp.sh": destCauses, "dest-ftps.sh": destCauses, "dest-webdav.sh": destCauses, "dest-smb.sh": destCauses, "dest-nfs.sh": destCauses, "mail.sh": mailCauses} {
		data, err := os.ReadFile(filepath.Join("steps", script))
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(string(data), "set -euo pipefail")
		for code, c := range table {
			if c.text == "" || c.hint == "" || c.key == "" {
				t.Errorf("%s code %d lacks a cause, key or hint", script, code)
			}
			if !regexp.MustCompile(`#.*\b` + strconv.Itoa(code) + `\b`).MatchString(header) {
				t.Errorf("%s: code %d is explained by archive but not documented in the script's header", script, code)
			}
		}
	}
}
