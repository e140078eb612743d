package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The zip steps against zips made every way the zip tool and Go's writer make them, and against
// zips made to fool them. Each runs the steps as an operator would (steps/unpack.sh and
// steps/pack.sh, which run the built archive) and checks what comes out.

// zips writes the test zips into dir and returns their paths by name.
func zips(t *testing.T, dir, body string) map[string]string {
	t.Helper()
	need(t, "zip")
	os.WriteFile(filepath.Join(dir, "dump.sql"), []byte(body), 0o600)
	os.WriteFile(filepath.Join(dir, "d[1] -x.sql"), []byte(body[:len(body)/3]), 0o600)
	os.WriteFile(filepath.Join(dir, "other.txt"), []byte("other\n"), 0o600)
	long := strings.Repeat("l", 100) + ".sql"
	os.WriteFile(filepath.Join(dir, long), []byte(body), 0o600)
	for _, cmd := range map[string]string{
		"one.zip":    "zip -q one.zip dump.sql",
		"multi.zip":  "zip -q multi.zip other.txt dump.sql 'd[1] -x.sql'",
		"z64.zip":    "zip -q -fz z64.zip dump.sql",
		"stored.zip": "zip -q -0 stored.zip dump.sql",
		"enc.zip":    "zip -q -P secret enc.zip dump.sql",
		"stream.zip": "zip -q - dump.sql | cat >stream.zip", // to a pipe: sizes and CRC in a data descriptor
		"long.zip":   "zip -q long.zip " + long,
		"nested.zip": "mkdir -p sub && cp dump.sql sub/ && zip -q nested.zip sub/dump.sql",
	} {
		c := exec.Command("bash", "-c", cmd)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	paths := map[string]string{}
	for _, n := range []string{"one", "multi", "z64", "stored", "enc", "stream", "long", "nested"} {
		paths[n] = filepath.Join(dir, n+".zip")
	}
	raw := func(name string, fh zip.FileHeader, data []byte) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateRaw(&fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		zw.Close()
		paths[name] = filepath.Join(dir, name+".zip")
		os.WriteFile(paths[name], buf.Bytes(), 0o600)
	}
	var deflated bytes.Buffer
	fw, _ := flate.NewWriter(&deflated, 6)
	fw.Write([]byte(body))
	fw.Close()
	crc := crc32.ChecksumIEEE([]byte(body))
	head := zip.FileHeader{Name: "dump.sql", Method: zip.Deflate, CRC32: crc, UncompressedSize64: uint64(len(body)), CompressedSize64: uint64(deflated.Len())}
	bad := head
	bad.CRC32 ^= 1
	raw("badcrc", bad, deflated.Bytes())
	// The dump's deflate stream, then more: a second gzip member after it. Inflated as a gzip
	// stream (pigz) it would pass; unzip -t calls it a bad CRC; so must we.
	var extra bytes.Buffer
	extra.Write(deflated.Bytes())
	extra.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	trailing := head
	trailing.CompressedSize64 = uint64(extra.Len())
	raw("trailing", trailing, extra.Bytes())

	var twice bytes.Buffer
	zw := zip.NewWriter(&twice)
	for i := 0; i < 2; i++ {
		w, _ := zw.Create("dump.sql")
		w.Write([]byte(body))
	}
	zw.Close()
	paths["twice"] = filepath.Join(dir, "twice.zip")
	os.WriteFile(paths["twice"], twice.Bytes(), 0o600)

	whole, _ := os.ReadFile(paths["one"])
	paths["truncated"] = filepath.Join(dir, "truncated.zip")
	os.WriteFile(paths["truncated"], whole[:len(whole)-30], 0o600)
	paths["html"] = filepath.Join(dir, "page.zip")
	os.WriteFile(paths["html"], []byte("<!DOCTYPE html><html><body>Maintenance</body></html>"), 0o600)
	return paths
}

// step runs a step script as an operator would, with the built archive as ARCHIVE_BIN.
func runStep(t *testing.T, dir string, env []string, script string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join("steps", script), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "ARCHIVE_BIN=" + filepath.Join(binDir, "archive"), "TMPDIR=" + dir}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestUnpackChecksEveryKindOfZipAndRefusesForgedOnes(t *testing.T) {
	dir := t.TempDir()
	body := dump("zip")
	z := zips(t, dir, body)
	for _, tc := range []struct {
		name, zip, member string
		env               []string
		code              int
		reuse, cause      string // reuse=yes/no on success; a regexp of stderr on failure
	}{
		{"one member", "one", "dump.sql", nil, 0, "yes", ""},
		{"third member, name with [ ] - and space", "multi", "d[1] -x.sql", nil, 0, "yes", ""},
		{"zip64", "z64", "dump.sql", nil, 0, "yes", ""},
		{"sizes and CRC in a data descriptor", "stream", "dump.sql", nil, 0, "yes", ""},
		{"stored member: not reused", "stored", "dump.sql", nil, 0, "no", ""},
		{"a name of 100 characters or more: not reused", "long", strings.Repeat("l", 100) + ".sql", nil, 0, "no", ""},
		{"not a zip: a web page", "html", "dump.sql", nil, 20, "", `not a zip: the server sent a web page`},
		{"truncated", "truncated", "dump.sql", nil, 21, "", `central directory is missing or damaged`},
		{"bad CRC", "badcrc", "dump.sql", nil, 21, "", `\(bad CRC\)`},
		{"data after the deflate stream", "trailing", "dump.sql", nil, 21, "", `deflate stream ends after \d+ of its \d+ bytes`},
		{"no such member, a near one named", "nested", "dump.sql", nil, 22, "", `no member named "dump.sql" at its root \(found: sub/dump.sql\)`},
		{"the name twice", "twice", "dump.sql", nil, 23, "", `2 members named "dump.sql"`},
		{"past max_size", "one", "dump.sql", []string{"ARCHIVE_MAX_SIZE=1000"}, 24, "", `expands past max_size \(1000 bytes\)`},
		{"below min_size", "one", "dump.sql", []string{"ARCHIVE_MIN_SIZE=10M"}, 2, "", `usage`},
		{"below min_size, in bytes", "one", "dump.sql", []string{"ARCHIVE_MIN_SIZE=10000000"}, 25, "", `below min_size`},
		{"encrypted", "enc", "dump.sql", nil, 27, "", `is encrypted: archive never asks for a password`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "out", tc.name, tc.member)
			os.MkdirAll(filepath.Dir(out), 0o700)
			env := append([]string{"ARCHIVE_EXPECTED_FILE=" + tc.member, "ARCHIVE_REUSE=yes"}, tc.env...)
			code, stdout, stderr := runStep(t, dir, env, "unpack.sh", z[tc.zip], out)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			if code != 0 {
				if !regexp.MustCompile(tc.cause).MatchString(stderr) || !strings.HasPrefix(stderr, "unpack: ") {
					t.Errorf("stderr %q does not match %q", stderr, tc.cause)
				}
				if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) > 0 {
					t.Errorf("a failed unpack left %v", entries)
				}
				return
			}
			want := body
			if tc.zip == "multi" {
				want = body[:len(body)/3]
			}
			if !strings.Contains(stdout, "sha256="+sha(want)+"\n") || !strings.Contains(stdout, "reuse="+tc.reuse+"\n") {
				t.Errorf("stdout %q: want sha256 %s and reuse=%s", stdout, sha(want), tc.reuse)
			}
			// With reuse the dump is never written; without, it is, whole.
			got, err := os.ReadFile(out)
			if (tc.reuse == "yes") != os.IsNotExist(err) || (err == nil && string(got) != want) {
				t.Errorf("reuse=%s but the dump on disk: %v, %d bytes", tc.reuse, err, len(got))
			}
		})
	}
}

func TestPackReusesTheZipsDataAndProvesWhatItWrote(t *testing.T) {
	dir := t.TempDir()
	body := dump("pack")
	z := zips(t, dir, body)
	for _, tc := range []struct {
		name, zip, member, compressor string
		env                           []string
		code                          int
	}{
		{"reuse, one member", "one", "dump.sql", "reuse", nil, 0},
		{"reuse, third member", "multi", "d[1] -x.sql", "reuse", nil, 0},
		{"reuse, zip64", "z64", "dump.sql", "reuse", nil, 0},
		{"reuse, data descriptor", "stream", "dump.sql", "reuse", nil, 0},
		{"reuse of a stored member is refused: Go decides before", "stored", "dump.sql", "reuse", nil, 20},
		{"reuse without ARCHIVE_ZIP", "", "dump.sql", "reuse", nil, 2},
		{"gzip with the full proof", "", "dump.sql", "gzip", []string{"ARCHIVE_SHA256=" + sha(body)}, 0},
		{"gzip with a wrong sha256", "", "dump.sql", "gzip", []string{"ARCHIVE_SHA256=" + strings.Repeat("0", 64)}, 22},
		{"no compressor", "", "dump.sql", "", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := filepath.Join(dir, "pack", tc.name)
			os.MkdirAll(sub, 0o700)
			sql := filepath.Join(sub, tc.member)
			if tc.compressor != "reuse" {
				os.WriteFile(sql, []byte(body), 0o600)
			}
			env := append([]string{"ARCHIVE_COMPRESSOR=" + tc.compressor, "ARCHIVE_MEMBER=" + tc.member}, tc.env...)
			if tc.zip != "" {
				env = append(env, "ARCHIVE_ZIP="+z[tc.zip])
			}
			tgz := filepath.Join(sub, "out.tgz")
			code, stdout, stderr := runStep(t, dir, env, "pack.sh", sql, tgz)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			if code != 0 {
				if _, err := os.Stat(tgz); err == nil || exists(tgz+".part") {
					t.Error("a failed pack left an archive")
				}
				return
			}
			want := body
			if tc.zip == "multi" {
				want = body[:len(body)/3]
			}
			name, got := sqlInArchive(t, tgz)
			if name != tc.member || got != want {
				t.Errorf("the archive holds %q (%d bytes), want %q (%d bytes)", name, len(got), tc.member, len(want))
			}
			if out, err := exec.Command("gzip", "-t", tgz).CombinedOutput(); err != nil {
				t.Errorf("gzip -t: %v %s", err, out)
			}
			data, _ := os.ReadFile(tgz)
			if !strings.Contains(stdout, "sha256="+sha(string(data))+"\n") || !strings.Contains(stdout, "compressor="+tc.compressor+"\n") {
				t.Errorf("stdout %q does not give the archive's sha256 and compressor", stdout)
			}
		})
	}
	// The same dump packs into the same archive, byte for byte: a rerun finds it on the server.
	var sums []string
	for i := 0; i < 2; i++ {
		tgz := filepath.Join(dir, "same", strings.Repeat("x", i+1)+".tgz")
		os.MkdirAll(filepath.Dir(tgz), 0o700)
		_, stdout, stderr := runStep(t, dir, []string{"ARCHIVE_COMPRESSOR=reuse", "ARCHIVE_ZIP=" + z["one"]}, "pack.sh", filepath.Join(dir, "absent", "dump.sql"), tgz)
		sums = append(sums, stdout+stderr)
	}
	if sums[0] != sums[1] || !strings.Contains(sums[0], "sha256=") {
		t.Errorf("two packs of the same zip differ: %q, %q", sums[0], sums[1])
	}
}
