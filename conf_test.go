package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	dir, d := filepath.Dir(p), c.Dests[0]
	if c.WorkDir != filepath.Join(dir, "work") || d.IdentityFile != filepath.Join(dir, "id") {
		t.Errorf("relative paths not taken from the conf's folder: %q %q", c.WorkDir, d.IdentityFile)
	}
	if c.NameFormat != "%Y%d%m" || d.Port != 22 || d.KeepMin != 7 || !d.History || c.OnUnchanged != "skip" || d.StateDir != c.StateDir {
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
	if c.Dests[0].User != "-oProxyCommand=$(touch /tmp/pwned);`id` # x" {
		t.Errorf("value altered: %q", c.Dests[0].User)
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

// documentedCodes reads the codes listed under "Exit codes:" in a step's header: each stands
// after "#" or two spaces and before its meaning ("  22 login refused").
func documentedCodes(t *testing.T, script string) map[int]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("steps", script))
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(string(data), "set -euo pipefail")
	_, block, ok := strings.Cut(header, "# Exit codes")
	if !ok {
		t.Fatalf("%s: its header has no \"# Exit codes\" block", script)
	}
	codes := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)(?:^#\s+|\s{2,}|\) )(\d{1,3})\s+[A-Za-z(]`).FindAllStringSubmatch(block, -1) {
		n, _ := strconv.Atoi(m[1])
		codes[n] = true
	}
	return codes
}

// Every code a cause table explains is documented in its script's header, where an operator
// running the step by hand reads it, and every code a header documents has a cause in words.
func TestStepExitCodesAreExplainedAndDocumented(t *testing.T) {
	tables := map[string]map[int]cause{"fetch.sh": fetchCauses, "unpack.sh": unpackCauses, "pack.sh": packCauses, "extract.sh": extractCauses,
		"dest-sftp.sh": destCauses, "dest-ftps.sh": destCauses, "dest-webdav.sh": destCauses, "dest-smb.sh": destCauses, "dest-nfs.sh": destCauses, "dest-s3.sh": destCauses,
		"mail.sh": mailCauses, "ping.sh": nil, "encrypt.sh": encryptCauses}
	scripts, _ := filepath.Glob("steps/*.sh")
	for _, path := range scripts {
		if _, ok := tables[filepath.Base(path)]; !ok && filepath.Base(path) != "lib.sh" {
			t.Errorf("%s has no cause table in this test", path)
		}
	}
	for script, table := range tables {
		documented := documentedCodes(t, script)
		for code, c := range table {
			if c.text == "" || c.hint == "" || c.key == "" {
				t.Errorf("%s code %d lacks a cause, key or hint", script, code)
			}
			if !documented[code] {
				t.Errorf("%s: code %d is explained by archive but not documented in the script's header", script, code)
			}
		}
		for code := range documented {
			_, inTable := table[code]
			_, common := commonCauses[code]
			if code > 0 && !inTable && !common && script != "ping.sh" {
				t.Errorf("%s documents code %d, which archive does not explain", script, code)
			}
		}
	}
}

// The table is the conf: each row fills a field of the type its kind gives, and archive.conf
// names every key, its commented value being the row's default whenever the row has one.
func TestConfTableRowsFillTheirFieldsAndArchiveConfShowsTheDefaults(t *testing.T) {
	types := map[kind]reflect.Type{integer: reflect.TypeOf(0), port: reflect.TypeOf(0), seconds: reflect.TypeOf(time.Second),
		size: reflect.TypeOf(int64(0)), yesOrNo: reflect.TypeOf(true)}
	for _, ck := range confKeys {
		var target any = &Conf{}
		if ck.s == "destination" || ck.s == "retention" {
			target = &Destination{}
		}
		f := reflect.ValueOf(target).Elem()
		for _, part := range strings.Split(ck.field, ".") {
			f = f.FieldByName(part)
			if !f.IsValid() {
				t.Fatalf("[%s] %s fills %q, which %T does not have", ck.s, ck.k, ck.field, target)
			}
		}
		want, ok := types[ck.kind]
		if !ok {
			want = reflect.TypeOf("")
		}
		if f.Type() != want {
			t.Errorf("[%s] %s: field %s is %s, its kind gives %s", ck.s, ck.k, ck.field, f.Type(), want)
		}
	}
	shown := map[[2]string]string{}
	for _, k := range confFileKeys(t) {
		shown[[2]string{k[0], k[1]}] = k[2]
	}
	for _, ck := range confKeys {
		val, ok := shown[[2]string{ck.s, ck.k}]
		switch {
		case !ok:
			t.Errorf("archive.conf does not show [%s] %s", ck.s, ck.k)
		case ck.def != "" && val != ck.def && !slices.ContainsFunc(confKeys, func(o confKey) bool { return o.s == ck.s && o.k == ck.k && o.def == val }):
			t.Errorf("archive.conf shows [%s] %s = %q, its default is %q", ck.s, ck.k, val, ck.def)
		}
	}
}

// Several destinations: [destination] first, then each [destination NAME] in the file's order,
// each with its own keys, state folder and retention (its own keys, else [retention]); a
// [retention] problem is told once, a bad name or a key of the wrong section by its section.
func TestLoadConfReadsEveryDestinationSection(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s3.key"), []byte("AKID\nsecret\n"), 0o600)
	p := writeTestConf(t, goodConf+`[retention]
keep_days = 40
[destination offsite]
protocol = s3
endpoint = https://s3.example.org
bucket = nightly-archives
access_key_file = `+filepath.Join(dir, "s3.key")+`
keep_days = 400
`)
	c, err := loadConf(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Dests) != 2 {
		t.Fatalf("%d destinations, want 2", len(c.Dests))
	}
	main, off := c.Dests[0], c.Dests[1]
	if main.label() != "default" || main.Protocol != "sftp" || main.KeepDays != 40 || main.StateDir != c.StateDir {
		t.Errorf("[destination]: %+v", main)
	}
	if off.label() != "offsite" || off.Protocol != "s3" || off.KeepDays != 400 || off.KeepMin != 7 || off.Region != "us-east-1" ||
		off.PartSize != 64<<20 || off.StateDir != filepath.Join(c.StateDir, "dest-offsite") || off.Host != "" {
		t.Errorf("[destination offsite]: %+v", off)
	}
	if got := fieldText(off, "PartSize"); got != "67108864" {
		t.Errorf("part_size reaches the step as %q", got)
	}

	p = writeTestConf(t, goodConf+`[retention]
keep_days = soon
[destination Off Site]
protocol = nfs
path = /mnt/x
[destination b]
protocol = s3
hots = h
`)
	_, err = loadConf(p)
	got := strings.Join(confErrors(err), "\n")
	for _, want := range []string{"[destination Off Site] (line", "a destination's name is 1 to 32",
		"[destination b] endpoint", "is required", "[destination b] hots (line"} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "[retention] keep_days"); n != 1 {
		t.Errorf("[retention] keep_days told %d times, want once:\n%s", n, got)
	}
}

// A conf whose only destination section has a bad name is told that, not also the required keys
// of a [destination] it does not have.
func TestLoadConfABadDestinationNameAloneIsToldAlone(t *testing.T) {
	conf, _, _ := strings.Cut(goodConf, "[destination]")
	_, err := loadConf(writeTestConf(t, conf+"[destination Off]\nprotocol = nfs\npath = /mnt/x\n"))
	got := strings.Join(confErrors(err), "\n")
	if !strings.Contains(got, "[destination Off] (line") || strings.Contains(got, "[destination] ") {
		t.Errorf("errors:\n%s", got)
	}
}
