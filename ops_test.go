package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestCheckPassesOnAGoodSetupAndTouchesTheServer(t *testing.T) {
	e := newEnv(t)
	e.wantExit(e.run("check"), exitOK)
	for _, l := range []string{`OK +conf `, `OK +tool curl +/`, `OK +work_dir `, `OK +source +https://.*HTTP 20[06], TLS verified`,
		`OK +destination +login to sftp://`, `OK +write probe +wrote archive-check-probe-\S+\.part, verified, renamed to archive-check-probe-\S+, deleted`, `OK +retention +0 archives`, `all OK`} {
		e.wantLine(l)
	}
	if names := e.ssh.remoteNames(t); len(names) != 0 {
		t.Fatalf("check left %v on the server", names)
	}
}

func TestCheckNamesTheCauseOfEachBrokenPiece(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env)
		line  string
	}{
		{"bad key", func(e *env) {
			key := filepath.Join(e.dir, "other_key")
			exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).Run()
			e.conf["destination"]["identity_file"] = key
		}, `FAILED +destination +the archive server refused the login`},
		{"unwritable path", func(e *env) {
			ro := filepath.Join(e.ssh.env["DEST"], "readonly")
			os.Mkdir(ro, 0o755)
			e.conf["destination"]["path"] = ro
		}, `FAILED +write probe +permission denied on the archive server`},
		{"unreachable url", func(e *env) { e.conf["source"]["url"] = "https://127.0.0.1:" + closedPort(t) + "/d.zip" },
			`FAILED +source +cannot connect to the source server`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(e)
			e.wantExit(e.run("check"), exitFailure)
			e.wantLine(tc.line)
			e.wantLine(`item\(s\) FAILED`)
		})
	}
}

func TestListMarksThePruneCandidates(t *testing.T) {
	e := newEnv(t)
	e.conf["archive"]["name_format"] = "%Y%m%d"
	e.conf["retention"]["keep_min"] = "2"
	dest := e.ssh.env["DEST"]
	for _, n := range []string{"20260101.tgz", "20261101.tgz", "20261120.tgz", "readme.txt"} {
		os.WriteFile(filepath.Join(dest, n), []byte("x"), 0o644)
	}
	e.wantExit(e.run("list", "--date", "2026-11-28"), exitOK)
	e.wantLine(`^20260101.tgz +2026-01-01 .*DELETE .*: 331 days old, past keep_days = 30`)
	e.wantLine(`^20261101.tgz +2026-11-01 .*keep .*: among the 2 newest`)
	e.wantLine(`^readme.txt .*ignored: not a name that name_format "%Y%m%d" makes`)
}

func TestRestoreRoundTripsAndRefusesATamperedArchive(t *testing.T) {
	e := newEnv(t)
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	out := filepath.Join(e.dir, "restored")
	e.wantExit(e.run("restore", "--latest", "--to", out), exitOK)
	e.wantLine(`^restored .*/restored/dump.sql from sftp://`)
	got, _ := os.ReadFile(filepath.Join(out, "dump.sql"))
	if string(got) != dump("first") {
		t.Fatal("the restored dump differs from the published one")
	}

	// The dump's name is never written over, unless --force.
	e.wantExit(e.run("restore", "--latest", "--to", out), exitFailure)
	e.wantLine(`^archive: error: 20262811.tgz: the target folder already holds the dump's file name .*add --force`)
	e.wantExit(e.run("restore", "--latest", "--to", out, "--force"), exitOK)

	// From a fresh machine: no local record; the sidecar on the server only when told.
	os.Remove(filepath.Join(e.dir, "state", recordsFile))
	e.wantExit(e.run("restore", "20262811.tgz", "--to", filepath.Join(e.dir, "fresh")), exitFailure)
	e.wantLine(`^archive: error: restore: no sha256 recorded for 20262811.tgz by this host`)
	e.wantExit(e.run("restore", "--latest", "--to", filepath.Join(e.dir, "fresh")), exitFailure)
	e.wantLine(`^archive: error: restore: no archive on .* that this host recorded`)
	e.wantExit(e.run("restore", "20262811.tgz", "--use-server-checksum", "--to", filepath.Join(e.dir, "fresh")), exitOK)
	e.wantLine(`matches 20262811.tgz.sha256 on the server, trusted as asked by --use-server-checksum`)

	// The archive altered on the server: a loud failure, nothing extracted.
	tgz := filepath.Join(e.ssh.env["DEST"], "20262811.tgz")
	data, _ := os.ReadFile(tgz)
	data[len(data)/2] ^= 0xff
	os.WriteFile(tgz, data, 0o644)
	e.wantExit(e.run("restore", "20262811.tgz", "--use-server-checksum", "--to", filepath.Join(e.dir, "bad")), exitFailure)
	e.wantLine(`^archive: error: 20262811.tgz: the archive is not the one uploaded`)
	if _, err := os.Stat(filepath.Join(e.dir, "bad", "dump.sql")); err == nil {
		t.Fatal("a tampered archive was extracted")
	}
}

func TestDryRunChangesNothingOnTheServerOrInTheState(t *testing.T) {
	e := newEnv(t)
	e.conf["archive"]["name_format"] = "%Y%m%d"
	e.conf["retention"]["keep_min"] = "1"
	old := filepath.Join(e.ssh.env["DEST"], "20250101.tgz")
	os.WriteFile(old, []byte("x"), 0o644)
	e.wantExit(e.run("run", "--dry-run", "--date", "2026-11-28"), exitOK)
	e.wantLine(`INFO check=transfer would_upload=sftp://.*/20261128.tgz`)
	e.wantLine(`INFO check=prune would_delete=20250101.tgz`)
	if names := strings.Join(e.ssh.remoteNames(t), ","); names != "20250101.tgz" {
		t.Fatalf("a dry run changed the server: %s", names)
	}
	if _, err := os.Stat(e.statePath()); err == nil {
		t.Fatal("a dry run wrote the state")
	}
	e.workClean()
}

func TestStatusTellsTheLastRunAndLastRunJSONHasNoSecret(t *testing.T) {
	e := newEnv(t)
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantExit(e.run("status", "--date", "2026-11-30"), exitOK)
	e.wantLine(`^last run .*SUCCESS, exit 0`)
	e.wantLine(`^last new dump 2026-11-28 \(2 days ago\), archived as 20262811.tgz`)
	var lr result
	data, _ := os.ReadFile(filepath.Join(e.dir, "state", lastRunFile))
	if err := json.Unmarshal(data, &lr); err != nil || lr.Archive != "20262811.tgz" || len(lr.Checks) < 7 || lr.DumpSize == 0 || lr.ArchiveSHA256 == "" {
		t.Fatalf("last-run.json: %v %+v", err, lr)
	}
	// The one secret of an sftp conf is the private key: no line of it may be in the report.
	key, err := os.ReadFile(e.conf["destination"]["identity_file"])
	if err != nil {
		t.Fatal(err)
	}
	secret := 0
	for _, l := range strings.Split(string(key), "\n") {
		if len(l) < 20 || strings.HasPrefix(l, "-----") {
			continue
		}
		secret++
		if strings.Contains(string(data), l) || strings.Contains(e.output, l) {
			t.Fatalf("a line of the private key is in last-run.json or in archive status")
		}
	}
	if secret == 0 {
		t.Fatal("the private key has no line to look for: the test proves nothing")
	}
}

func TestUnchangedForMaxUnchangedDaysBecomesAFailure(t *testing.T) {
	e := newEnv(t)
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantExit(e.run("--date", "2026-11-30"), exitWarning)
	e.wantExit(e.run("--date", "2026-12-01"), exitChanged)
	e.wantLine(`FAILED check=changed cause="the dump has not changed for 3 days \(since 2026-11-28\): the source looks stuck" .*key="\[archive\] max_unchanged_days"`)
}

func TestMonitorPingsStartThenSuccessOrFail(t *testing.T) {
	e := newEnv(t)
	var got []string
	var mu sync.Mutex
	mon := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path)
		mu.Unlock()
	}))
	defer mon.Close()
	ca := filepath.Join(e.dir, "monitor-ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mon.Certificate().Raw}), 0o644)
	e.conf["monitor"] = map[string]string{"ping_url": mon.URL + "/ping/secret-token", "ca_file": ca}
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.src.mode.Store("404")
	e.wantExit(e.run("--date", "2026-11-29"), exitURL)
	mu.Lock()
	defer mu.Unlock()
	if want := "/ping/secret-token/start,/ping/secret-token,/ping/secret-token/start,/ping/secret-token/fail"; strings.Join(got, ",") != want {
		t.Fatalf("pings %v, want %s", got, want)
	}
	if strings.Contains(e.output, "secret-token") {
		t.Fatal("the ping URL's token is in the log")
	}
}

// The restore drill: the newest archive restored into a private folder, its dump proven against
// the record, then removed; an encrypted one only with the identity, which never shows.
func TestVerifyRestoreTestProvesTheNewestArchiveAndLeavesNothing(t *testing.T) {
	need(t, "age", "age-keygen")
	e := newEnv(t)
	e.wantExit(e.run("--date", "2026-11-27"), exitOK)
	e.wantExit(e.run("verify", "--restore-test"), exitOK)
	e.wantLine(`OK check=verify name=20262711.tgz `)
	e.wantLine(`OK check=restore-test name=20262711.tgz dump_size=\d+ dump_sha256=` + sha(dump("first"))[:12] + ` note="restored into a private folder, proven, removed"`)
	if left, _ := os.ReadDir(filepath.Join(e.dir, "work")); len(left) > 0 {
		t.Fatalf("the drill left %v in work_dir", left)
	}

	identity, recipients := ageKeys(t, e.dir)
	e.conf["archive"]["encrypt_to"] = recipients
	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("second")}))
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantExit(e.run("verify", "--restore-test"), exitOK)
	// Both kinds in one folder: each verified against its record.
	e.wantLine(`OK check=verify name=20262811.tgz.age `)
	e.wantLine(`OK check=verify name=20262711.tgz `)
	e.wantLine(`SKIPPED check=restore-test name=20262811.tgz.age reason="the archive is encrypted: --identity FILE restores it`)
	e.wantExit(e.run("check"), exitOK)
	e.wantLine(`^OK +encryption +age, to 1 recipients \(.*recipients.txt: age1\S+\.\.\.\): a probe encrypted`)
	e.wantExit(e.run("list", "--date", "2026-11-28"), exitOK)
	e.wantLine(`^20262811.tgz.age +2026-11-28 `)
	e.wantLine(`^20262711.tgz +2026-11-27 `)
	e.wantExit(e.run("verify", "--restore-test", "--identity", identity), exitOK)
	e.wantLine(`OK check=restore-test name=20262811.tgz.age .*dump_sha256=` + sha(dump("second"))[:12])
	if strings.Contains(e.output, identityKey(t, identity)) {
		t.Fatal("the identity is in the output")
	}
}

// With gzip (the dump compressed again), the archive is encrypted after packing by encrypt.sh;
// it restores the same, and the plain archive is not left behind.
func TestEncryptionAfterGzipRestoresTheDump(t *testing.T) {
	need(t, "age", "age-keygen")
	e := newEnv(t)
	identity, recipients := ageKeys(t, e.dir)
	e.conf["archive"]["encrypt_to"], e.conf["archive"]["compressor"] = recipients, "gzip"
	e.wantExit(e.run("--date", "2026-11-28"), exitOK)
	e.wantLine(`OK check=archive name=20262811.tgz.age .*compressor=gzip encrypted=age`)
	e.wantExit(e.run("restore", "--latest", "--identity", identity, "--to", filepath.Join(e.dir, "back")), exitOK)
	if got, _ := os.ReadFile(filepath.Join(e.dir, "back", "dump.sql")); string(got) != dump("first") {
		t.Fatal("restore did not give the dump back")
	}
	if names := strings.Join(e.ssh.remoteNames(t), ","); names != "20262811.tgz.age,20262811.tgz.age.sha256" {
		t.Fatalf("the server holds %s", names)
	}
}
