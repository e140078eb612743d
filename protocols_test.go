package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The same scenarios against every destination protocol, each with its real server on loopback.

// destServer is an archive server for one protocol: the [destination] keys that reach it, and
// the local folder behind it where the test looks at what arrived.
type destServer struct {
	conf  map[string]string
	dir   string // the folder the archives land in
	owner int    // the uid files in dir must have, so that the server may delete them
	// throughService: files are planted by an upload, not written in dir: an object store keeps
	// metadata of its own, and a file written behind its back is not an object (gofakes3 fails).
	throughService bool
}

// protocolServers: a test server by protocol, and more than one implementation or setup of some
// (ftps-pure: Pure-FTPd refusing to write names that start with a dot; webdav-rclone: rclone's
// WebDAV server; smb-strict: signing mandatory, SMB3 only, a share name with a space; s3: the
// Versity S3 gateway, which checks every upload's sha256; s3-gofakes3: gofakes3 behind nginx,
// which checks neither logins nor checksums).
var protocolServers = map[string]struct {
	protocol, script string
	args             []string
	tools            []string
}{
	"ftps":          {"ftps", "vsftpd.sh", nil, []string{"vsftpd", "curl"}},
	"ftps-pure":     {"ftps", "pureftpd.sh", nil, []string{"curl"}},
	"webdav":        {"webdav", "webdav.sh", nil, []string{"nginx", "curl"}},
	"webdav-rclone": {"webdav", "rclone-webdav.sh", nil, []string{"rclone", "curl"}},
	"smb":           {"smb", "smbd.sh", nil, []string{"smbd", "smbclient"}},
	"smb-strict":    {"smb", "smbd.sh", []string{"strict"}, []string{"smbd", "smbclient"}},
	"s3":            {"s3", "s3.sh", []string{"versitygw"}, []string{"versitygw", "curl"}},
	"s3-gofakes3":   {"s3", "s3.sh", []string{"gofakes3"}, []string{"gofakes3", "nginx", "curl"}},
}

func startDest(t *testing.T, e *env, proto string) destServer {
	t.Helper()
	switch proto {
	case "sftp":
		return destServer{conf: e.conf["destination"], dir: e.ssh.env["DEST"], owner: uidOf(t, e.ssh.env["DEST"])}
	case "sftp-chroot", "sftp-rclone":
		// The SFTP servers operators run: OpenSSH with a chrooted "ForceCommand internal-sftp"
		// account (no shell), and another implementation, rclone's.
		script, args := "sshd.sh", []string{"sftp-only"}
		if proto == "sftp-rclone" {
			script, args = "rclone-sftp.sh", nil
			need(t, "rclone")
		} else if os.Geteuid() != 0 {
			if os.Getenv("CI") == "true" {
				t.Fatal("a chrooted SFTP account needs root; CI runs as root")
			}
			t.Skip("a chrooted SFTP account needs root")
		}
		dir := filepath.Join(e.dir, proto)
		if out, err := exec.Command("bash", append([]string{"testdata/servers/" + script, "start", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("cannot start %s: %v\n%s", script, err, out)
		}
		t.Cleanup(func() { exec.Command("bash", "testdata/servers/"+script, "stop", dir).Run() })
		env := readEnvFile(t, filepath.Join(dir, "env"))
		return destServer{conf: map[string]string{"protocol": "sftp", "host": "127.0.0.1", "port": env["PORT"], "user": env["USER"],
			"path": env["SERVER_PATH"], "identity_file": env["IDENTITY_FILE"], "known_hosts": env["KNOWN_HOSTS"], "timeout": "10"},
			dir: env["DEST"], owner: uidOf(t, env["DEST"])}
	case "nfs":
		dir := filepath.Join(e.dir, "nfs")
		os.Mkdir(dir, 0o755)
		return destServer{conf: map[string]string{"protocol": "nfs", "path": dir, "require_mount": "no"}, dir: dir}
	}
	srv := protocolServers[proto]
	need(t, srv.tools...)
	dir := filepath.Join(e.dir, proto)
	if out, err := exec.Command("bash", append([]string{"testdata/servers/" + srv.script, "start", dir}, srv.args...)...).CombinedOutput(); err != nil {
		t.Fatalf("cannot start %s: %v\n%s", srv.script, err, out)
	}
	t.Cleanup(func() { exec.Command("bash", "testdata/servers/"+srv.script, "stop", dir).Run() })
	env := readEnvFile(t, filepath.Join(dir, "env"))
	c := map[string]string{"protocol": srv.protocol, "user": env["USER"], "password_file": env["PASSWORD_FILE"], "timeout": "10"}
	switch srv.protocol {
	case "ftps":
		c["host"], c["port"], c["path"], c["ca_file"] = "127.0.0.1", env["PORT"], env["FOLDER"], env["CA_FILE"]
	case "webdav":
		c["url"], c["ca_file"] = env["URL"], env["CA_FILE"]
	case "smb":
		c["host"], c["port"], c["share"], c["path"] = "127.0.0.1", env["PORT"], env["SHARE"], env["FOLDER"]
	case "s3":
		delete(c, "user")
		delete(c, "password_file")
		c["endpoint"], c["bucket"], c["region"], c["prefix"] = env["ENDPOINT"], env["BUCKET"], env["REGION"], env["PREFIX"]
		c["access_key_file"], c["ca_file"] = env["ACCESS_KEY_FILE"], env["CA_FILE"]
	}
	return destServer{conf: c, dir: env["DEST"], owner: uidOf(t, env["DEST"]), throughService: srv.protocol == "s3"}
}

func (d destServer) names(t *testing.T) string {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func (d destServer) plant(t *testing.T, names ...string) {
	for _, n := range names {
		if !d.throughService {
			p := filepath.Join(d.dir, n)
			os.WriteFile(p, []byte("old archive"), 0o644)
			os.Chown(p, d.owner, -1)
			continue
		}
		local := filepath.Join(t.TempDir(), n)
		os.WriteFile(local, []byte("old archive"), 0o600)
		cmd := exec.Command("steps/dest-"+d.conf["protocol"]+".sh", "put", local, n)
		for k, v := range d.conf {
			cmd.Env = append(cmd.Env, "ARCHIVE_DEST_"+strings.ToUpper(k)+"="+v)
		}
		cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cannot plant %s: %v\n%s", n, err, out)
		}
	}
}

// allProtocols are the protocols, each with the server implementations and setups tested.
var allProtocols = []string{"sftp", "sftp-chroot", "sftp-rclone", "ftps", "ftps-pure", "webdav", "webdav-rclone", "smb", "smb-strict", "nfs", "s3", "s3-gofakes3"}

// onEvery runs body on each server, in parallel, each with its own env and archives named %Y%m%d.
func onEvery(t *testing.T, servers []string, body func(t *testing.T, e *env, d destServer)) {
	for _, proto := range servers {
		t.Run(proto, func(t *testing.T) {
			t.Parallel() // each with its own servers and folders
			e := newEnv(t)
			d := startDest(t, e, proto)
			e.conf["destination"] = d.conf
			e.conf["archive"]["name_format"] = "%Y%m%d"
			body(t, e, d)
		})
	}
}

// eachProtocol is one server of each protocol, for features that sit above the destination
// contract (encryption, the scrub): the contract itself is tested on every implementation.
var eachProtocol = []string{"sftp", "ftps", "webdav", "smb", "nfs", "s3"}

func TestEveryProtocolArchivesSkipsAndPrunes(t *testing.T) {
	onEvery(t, allProtocols, func(t *testing.T, e *env, d destServer) {
		e.conf["retention"]["keep_min"] = "2"
		d.plant(t, "20260101.tgz", "20260102.tgz", "20261020.tgz", "readme.txt")

		e.wantExit(e.run("--date", "2026-11-28"), exitOK)
		e.wantLine(`OK check=connection server=\S+`)
		e.wantLine(`OK check=transfer remote="?\S.*/20261128.tgz"? .*verified=`)
		e.wantLine(`INFO check=prune deleted=20260101.tgz date=2026-01-01`)
		e.wantLine(`INFO check=prune deleted=20260102.tgz`)
		if got, want := d.names(t), "20261020.tgz,20261128.tgz,20261128.tgz.sha256,readme.txt"; got != want {
			t.Fatalf("the server holds %s, want %s", got, want)
		}
		if _, body := sqlInArchive(t, filepath.Join(d.dir, "20261128.tgz")); body != dump("first") {
			t.Fatal("the archive on the server does not hold the dump")
		}

		e.wantExit(e.run("--date", "2026-11-29"), exitWarning)
		e.wantLine(`SKIPPED check=transfer reason="unchanged dump`)

		// Restore through the protocol, from the sidecar alone (a fresh machine, as told).
		os.Remove(filepath.Join(e.dir, "state", recordsFile))
		e.wantExit(e.run("restore", "20261128.tgz", "--use-server-checksum", "--to", filepath.Join(e.dir, "back")), exitOK)
		if got, _ := os.ReadFile(filepath.Join(e.dir, "back", "dump.sql")); string(got) != dump("first") {
			t.Fatal("restore did not give the dump back")
		}
	})
}

func TestEveryProtocolReportsItsFailuresWithTheirCause(t *testing.T) {
	type scenario struct {
		name  string
		setup func(e *env, d destServer)
		exit  int
		line  string
	}
	wrongPassword := func(e *env, d destServer) {
		p := filepath.Join(e.dir, "wrong-password")
		os.WriteFile(p, []byte("not the password\n"), 0o600)
		e.conf["destination"]["password_file"] = p
	}
	otherCA := func(e *env, d destServer) {
		other := filepath.Join(e.dir, "other-ca")
		exec.Command("testdata/servers/mkcert.sh", other).Run()
		e.conf["destination"]["ca_file"] = filepath.Join(other, "ca.pem")
	}
	missing := func(e *env, d destServer) {
		if e.conf["destination"]["protocol"] == "webdav" {
			e.conf["destination"]["url"] = strings.Replace(e.conf["destination"]["url"], "/dav/", "/nodav/", 1)
		} else {
			e.conf["destination"]["path"] += "/missing"
		}
	}
	wrongSecret := func(e *env, d destServer) {
		key, _ := os.ReadFile(e.conf["destination"]["access_key_file"])
		id, _, _ := strings.Cut(string(key), "\n")
		p := filepath.Join(e.dir, "wrong-secret")
		os.WriteFile(p, []byte(id+"\nnot the secret\n"), 0o600)
		e.conf["destination"]["access_key_file"] = p
	}
	noBucket := func(e *env, d destServer) { e.conf["destination"]["bucket"] = "no-such-bucket" }
	login := `FAILED check=connection cause="the archive server refused the login"`
	trust := `FAILED check=connection cause="the archive server is not trusted`
	gone := `FAILED check=connection cause="the folder does not exist on the archive server"`
	otherKey := func(e *env, d destServer) {
		k := filepath.Join(e.dir, "other_key")
		exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).Run()
		e.conf["destination"]["identity_file"] = k
	}
	cases := map[string][]scenario{
		"sftp-chroot": {{"a key the server does not know", otherKey, exitConnection, login}, {"folder missing", missing, exitConnection, gone}},
		"sftp-rclone": {{"a key the server does not know", otherKey, exitConnection, login}, {"folder missing", missing, exitConnection, gone}},
		"ftps-pure":   {{"wrong password", wrongPassword, exitConnection, login}, {"folder missing", missing, exitConnection, gone}},
		"ftps":        {{"wrong password", wrongPassword, exitConnection, login}, {"untrusted CA", otherCA, exitConnection, trust}, {"folder missing", missing, exitConnection, gone}},
		"webdav":      {{"wrong password", wrongPassword, exitConnection, login}, {"untrusted CA", otherCA, exitConnection, trust}, {"collection missing", missing, exitConnection, `FAILED check=connection cause=`}},
		"smb":         {{"wrong password", wrongPassword, exitConnection, login}, {"folder missing", missing, exitConnection, gone}},
		"nfs": {{"folder missing", missing, exitConnection, gone}, {"not a mount point", func(e *env, d destServer) { e.conf["destination"]["require_mount"] = "yes" },
			exitConnection, `FAILED check=connection cause="the NFS folder is not a mount point`}},
		"s3": {{"wrong secret", wrongSecret, exitConnection, login + ` .*key="\[destination\] access_key_file"`}, {"untrusted CA", otherCA, exitConnection, trust},
			{"bucket missing", noBucket, exitConnection, gone + ` .*key="\[destination\] bucket"`}},
		"s3-gofakes3": {{"untrusted CA", otherCA, exitConnection, trust}, {"bucket missing", noBucket, exitConnection, gone}},
	}
	for _, proto := range []string{"sftp-chroot", "sftp-rclone", "ftps", "ftps-pure", "webdav", "smb", "nfs", "s3", "s3-gofakes3"} {
		for _, sc := range cases[proto] {
			t.Run(proto+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				d := startDest(t, e, proto)
				e.conf["destination"] = d.conf
				sc.setup(e, d)
				e.wantExit(e.run("--date", "2026-11-28"), sc.exit)
				e.wantLine(sc.line)
				if _, err := os.Stat(e.statePath()); err == nil {
					t.Fatal("the state moved on after a failed run")
				}
				if strings.Contains(d.names(t), ".tgz") {
					t.Fatalf("the server holds %s after a failed run", d.names(t))
				}
				if pw, err := os.ReadFile(d.conf["password_file"]); err == nil && strings.Contains(e.output, strings.TrimSpace(string(pw))) {
					t.Fatal("the password is in the log")
				}
				e.workClean()
			})
		}
	}
}

// check, list and run --dry-run on every protocol and server: they report, and change nothing on
// the server (the folder, byte for byte) or in the state.
func TestEveryProtocolChecksListsAndDryRunsWithoutChangingTheServer(t *testing.T) {
	onEvery(t, allProtocols, func(t *testing.T, e *env, d destServer) {
		e.conf["retention"]["keep_min"] = "1"
		d.plant(t, "20260101.tgz", "20260102.tgz", "readme.txt")
		before := snapshot(d.dir)

		e.wantExit(e.run("check", "--date", "2026-11-28"), exitOK)
		if d.conf["protocol"] == "s3" {
			e.wantLine(`^OK +write probe +wrote archive-check-probe-\S+ \(whole or not at all: s3 has no rename\), verified, deleted`)
		} else {
			e.wantLine(`^OK +write probe +wrote archive-check-probe-\S+\.part, verified, renamed to archive-check-probe-\S+, deleted`)
		}
		e.wantLine(`^all OK`)
		e.wantExit(e.run("list", "--date", "2026-11-28"), exitOK)
		e.wantLine(`^20260101.tgz +2026-01-01 .* DELETE`)
		e.wantLine(`^readme.txt .*ignored`)
		e.wantExit(e.run("--dry-run", "--date", "2026-11-28"), exitOK)
		e.wantLine(`INFO check=transfer would_upload="?\S.*/20261128.tgz"? `)
		e.wantLine(`INFO check=prune would_delete=20260101.tgz`)
		if after := snapshot(d.dir); !sameFiles(before, after) {
			t.Fatalf("check, list or a dry run changed the server:\nbefore %v\nafter  %v", before, after)
		}
		if _, err := os.Stat(e.statePath()); err == nil {
			t.Fatal("a dry run wrote the state")
		}
	})
}

// A deletion the server refuses, on a share where the old archives are another user's (a sticky
// folder): smbclient exits 0 then; the run must say the file is still there, and not be SUCCESS.
func TestADeletionTheServerRefusesIsAWarningWithItsWords(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (a file of root's on the server); CI runs as root")
		}
		t.Skip("needs root (a file of root's on the server)")
	}
	for _, proto := range []string{"smb", "smb-strict", "sftp-chroot"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			d := startDest(t, e, proto)
			e.conf["destination"] = d.conf
			e.conf["archive"]["name_format"] = "%Y%m%d"
			e.conf["retention"]["keep_min"] = "1"
			old := filepath.Join(d.dir, "20250101.tgz")
			os.WriteFile(old, []byte("old, root's"), 0o644)
			os.Chown(d.dir, 0, 0)
			os.Chmod(d.dir, os.ModeSticky|0o777)
			e.wantExit(e.run("--date", "2026-11-28"), exitWarning)
			e.wantLine(`WARNING check=prune cause="(cannot delete: permission denied on the archive server|the server answered that it deleted 20250101.tgz, but it is still there)" .*name=20250101.tgz`)
			e.noLine(`INFO check=prune deleted=20250101.tgz`)
			e.wantLine(`RESULT WARNING exit=3`)
			if !exists(old) {
				t.Fatal("the old archive is gone: the test proves nothing")
			}
		})
	}
}

// Encryption at rest on every protocol: only NAME.tgz.age reaches the server, age's format and
// not a gzip; restore wants the identity, and with it gives back the dump, proven by its
// recorded sha256. (Plain and encrypted archives side by side: ops_test.go.)
func TestEveryProtocolEncryptsAndRestoresWithTheIdentity(t *testing.T) {
	need(t, "age", "age-keygen")
	onEvery(t, eachProtocol, func(t *testing.T, e *env, d destServer) {
		identity, recipients := ageKeys(t, e.dir)
		e.conf["archive"]["encrypt_to"] = recipients

		e.wantExit(e.run("--date", "2026-11-28"), exitOK)
		e.wantLine(`OK check=archive name=20261128.tgz.age size=\d+ sha256=\w+ compressor=reuse encrypted=age`)
		e.wantLine(`OK check=transfer remote="?\S.*/20261128.tgz.age"? .*verified=`)
		if got, want := d.names(t), "20261128.tgz.age,20261128.tgz.age.sha256"; got != want {
			t.Fatalf("the server holds %s, want %s", got, want)
		}
		data, _ := os.ReadFile(filepath.Join(d.dir, "20261128.tgz.age"))
		if !strings.HasPrefix(string(data), "age-encryption.org/v1\n") || strings.Contains(string(data), "INSERT INTO") {
			t.Fatal("the archive on the server is not an age file")
		}

		out := filepath.Join(e.dir, "back")
		e.wantExit(e.run("restore", "--latest", "--to", out), exitFailure)
		e.wantLine(`archive: error: restore: 20261128.tgz.age is encrypted: add --identity FILE`)
		other := filepath.Join(e.dir, "other.txt")
		exec.Command("age-keygen", "-o", other).Run()
		e.wantExit(e.run("restore", "--latest", "--to", out, "--identity", other), exitFailure)
		e.wantLine(`cannot decrypt the archive with this identity .*no identity matched`)
		e.wantExit(e.run("restore", "--latest", "--to", out, "--identity", identity), exitOK)
		e.wantLine(`dump    sha256 \w+ \(matches the dump's record\)`)
		if got, _ := os.ReadFile(filepath.Join(out, "dump.sql")); string(got) != dump("first") {
			t.Fatal("restore did not give the dump back")
		}
		if log, _ := os.ReadFile(filepath.Join(e.dir, "archive.log")); strings.Contains(e.output+string(log), identityKey(t, identity)) {
			t.Fatal("the identity's secret key is in the output or the log")
		}
	})
}

// ageKeys makes an age identity and the recipients file of its public key, in dir.
func ageKeys(t *testing.T, dir string) (identity, recipients string) {
	t.Helper()
	identity, recipients = filepath.Join(dir, "identity.txt"), filepath.Join(dir, "recipients.txt")
	if out, err := exec.Command("age-keygen", "-o", identity).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	pub, err := exec.Command("age-keygen", "-y", identity).Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(recipients, pub, 0o644)
	return identity, recipients
}

// identityKey is the AGE-SECRET-KEY line of an identity file.
func identityKey(t *testing.T, identity string) string {
	data, _ := os.ReadFile(identity)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			return l
		}
	}
	t.Fatal("no secret key in " + identity)
	return ""
}

// The scrub on every protocol: an intact archive, a truncated one, one rewritten with bytes of
// the same size, one removed, and one this host never uploaded; each gets its own line, the
// outcome is exit 17, and the damaged ones are kept out of keep_min and never pruned.
func TestEveryProtocolVerifyFindsDamagedMissingAndUnrecordedArchives(t *testing.T) {
	onEvery(t, eachProtocol, func(t *testing.T, e *env, d destServer) {
		for _, day := range []string{"27", "28", "29", "30"} {
			e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("night " + day)}))
			e.wantExit(e.run("--date", "2026-11-"+day), exitOK)
		}
		p := func(n string) string { return filepath.Join(d.dir, n) }
		data, _ := os.ReadFile(p("20261128.tgz"))
		os.WriteFile(p("20261128.tgz"), data[:len(data)/2], 0o644)
		data, _ = os.ReadFile(p("20261129.tgz"))
		for i := range data {
			data[i] ^= 0x5a
		}
		os.WriteFile(p("20261129.tgz"), data, 0o644)
		os.Remove(p("20261130.tgz"))
		d.plant(t, "20261101.tgz")

		e.wantExit(e.run("verify"), exitVerify)
		e.wantLine(`OK check=verify name=20261127.tgz size=\d+ sha256=\w+ verified=(sha256|download)`)
		e.wantLine(`FAILED check=verify name=20261128.tgz result=DIFFERS cause="the archive on the server is not the one uploaded`)
		e.wantLine(`FAILED check=verify name=20261129.tgz result=DIFFERS `)
		e.wantLine(`FAILED check=verify name=20261130.tgz result=MISSING `)
		e.wantLine(`WARNING check=verify cause="the archive has no record on this host: its content cannot be proven" name=20261101.tgz result=UNRECORDED`)
		e.wantLine(`INFO check=verify checked=5 ok=1 differs=2 missing=1 unrecorded=1`)
		e.wantLine(`RESULT FAILURE exit=17 `)
		if got := readDamaged(filepath.Join(e.dir, "state")); len(got) != 3 || !got["20261128.tgz"] || !got["20261129.tgz"] || !got["20261130.tgz"] {
			t.Fatalf("damaged = %v", got)
		}

		// A sample of two is the newest and the oldest.
		e.wantExit(e.run("verify", "--sample", "2"), exitVerify)
		e.wantLine(`INFO check=verify checked=2 `)
		e.wantLine(`name=20261130.tgz result=MISSING`)
		e.wantLine(`name=20261101.tgz result=UNRECORDED`)
		e.wantExit(e.run("status"), exitOK)
		e.wantLine(`^last verify .*FAILURE, exit 17, verify of 2 archives`)
	})
}

// Two copies: an SFTP server in the building and an S3 bucket off-site. The bucket refuses the
// login on the first night: the SFTP copy is made and the run is a WARNING naming offsite. With
// the key mended, the next night (the dump unchanged) delivers to offsite alone; the night after
// has nothing to do; with both failing, the run fails. Neither destination's secret is ever on a
// command line, in the log or in a mail.
func TestTwoDestinationsOneFailingThenCatchingUp(t *testing.T) {
	e := newEnv(t)
	m := newMailpit(t, e.dir, "starttls")
	e.mailTo(m, "smtp")
	off := startDest(t, e, "s3")
	e.conf["destination offsite"] = off.conf
	e.conf["destination offsite"]["keep_days"] = "400"
	goodKey := off.conf["access_key_file"]
	key, _ := os.ReadFile(goodKey)
	id, secret, _ := strings.Cut(strings.TrimSpace(string(key)), "\n")
	wrong := filepath.Join(e.dir, "wrong-s3.key")
	os.WriteFile(wrong, []byte(id+"\nnot-the-secret\n"), 0o600)
	e.conf["destination offsite"]["access_key_file"] = wrong
	smtpPassword, _ := os.ReadFile(m.env["SMTP_PASSWORD_FILE"])
	secrets := []string{secret, strings.TrimSpace(string(smtpPassword))}
	stop := sampleArgv(t, secrets)
	defer stop()
	onSFTP := func() string { return (destServer{dir: e.ssh.env["DEST"]}).names(t) }

	e.wantExit(e.run("--date", "2026-11-28"), exitWarning)
	e.wantLine(`OK check=connection destination=default server=sftp://`)
	e.wantLine(`OK check=transfer destination=default remote=\S+/20262811.tgz `)
	e.wantLine(`FAILED check=connection destination=offsite cause="the archive server refused the login" .*key="\[destination offsite\] access_key_file"`)
	e.wantLine(`SKIPPED check=transfer destination=offsite reason="an earlier check failed"`)
	e.wantLine(`RESULT WARNING exit=3`)
	if got := onSFTP(); got != "20262811.tgz,20262811.tgz.sha256" {
		t.Fatalf("the SFTP server holds %q", got)
	}
	if got := off.names(t); got != "" {
		t.Fatalf("the bucket holds %q after a refused login", got)
	}
	e.wantExit(e.run("status", "--from", "offsite"), exitWarning)
	e.wantLine(`^destination +offsite +FAILED +s3://archives/nightly/ at connection: the archive server refused the login`)
	e.wantLine(`^  FAILED +connection +cause="the archive server refused the login" destination=offsite `)
	e.noLine(`destination=default`)

	// Still refused the next night: the SFTP copy of the dump stands, so a WARNING again.
	e.wantExit(e.run("--date", "2026-11-29"), exitWarning)
	e.wantLine(`OK check=changed unchanged=yes action="delivered only to offsite, `)
	e.wantLine(`FAILED check=connection destination=offsite cause="the archive server refused the login"`)
	e.noLine(`check=connection destination=default`)

	e.conf["destination offsite"]["access_key_file"] = goodKey
	e.wantExit(e.run("--date", "2026-11-29"), exitOK)
	e.wantLine(`OK check=changed unchanged=yes action="delivered only to offsite, `)
	e.wantLine(`OK check=transfer destination=offsite remote=s3://archives/nightly/20262911.tgz .*verified=checksum`)
	e.noLine(`check=transfer destination=default`)
	e.wantLine(`OK check=prune destination=offsite .*keep_days=400`)
	if got := off.names(t); got != "20262911.tgz,20262911.tgz.sha256" {
		t.Fatalf("the bucket holds %q, want the unchanged dump's archive", got)
	}
	if got := onSFTP(); got != "20262811.tgz,20262811.tgz.sha256" {
		t.Fatalf("the SFTP server holds %q: it was sent the dump again", got)
	}

	e.wantExit(e.run("--date", "2026-11-30"), exitWarning)
	e.wantLine(`WARNING check=changed cause="the dump is the same as the last one archived; nothing to do"`)

	e.src.zip.Store(makeZip(t, map[string]string{"dump.sql": dump("second")}))
	e.conf["destination offsite"]["access_key_file"] = wrong
	e.conf["destination"]["port"] = "1"
	e.wantExit(e.run("--date", "2026-12-01"), exitConnection)
	e.wantLine(`FAILED check=connection destination=default cause="cannot reach the archive server`)
	e.wantLine(`FAILED check=connection destination=offsite cause="the archive server refused the login"`)
	e.wantLine(`RESULT FAILURE exit=15`)

	msgs := m.messages(t)
	if len(msgs) != 5 {
		t.Fatalf("%d mails, want 5", len(msgs))
	}
	var warned string
	for _, msg := range msgs {
		for _, s := range secrets {
			if strings.Contains(msg.Text, s) || strings.Contains(msg.Subject, s) {
				t.Errorf("a secret is in the mail %q", msg.Subject)
			}
		}
		if strings.Contains(msg.Subject, "WARNING at connection") {
			warned += msg.Text
			if !strings.Contains(msg.Subject, "1 of 2 destinations failed") {
				t.Errorf("the WARNING subject does not say a destination failed: %q", msg.Subject)
			}
		}
	}
	for _, want := range []string{"Destinations:", "default      DELIVERED", "default      UP TO DATE", "offsite      FAILED     s3://archives/nightly/ at connection: the archive server refused the login"} {
		if !strings.Contains(warned, want) {
			t.Errorf("the WARNING mails lack %q:\n%s", want, warned)
		}
	}
	log, _ := os.ReadFile(filepath.Join(e.dir, "archive.log"))
	for _, s := range secrets {
		if strings.Contains(string(log), s) {
			t.Error("a secret is in the log")
		}
	}

	// The operator's commands read one destination with --from, each its own records.
	e.conf["destination offsite"]["access_key_file"] = goodKey
	e.conf["destination"]["port"] = e.ssh.env["PORT"]
	e.wantExit(e.run("list", "--from", "offsite", "--date", "2026-12-01"), exitOK)
	e.wantLine(`^offsite: s3://archives/nightly/`)
	e.wantLine(`^20262911.tgz +2026-11-29 `)
	e.noLine(`^20262811.tgz`)
	e.wantExit(e.run("verify", "--from", "offsite"), exitOK)
	e.wantLine(`OK check=verify destination=offsite name=20262911.tgz .*verified=download`)
	e.noLine(`destination=default`)
	e.wantExit(e.run("verify"), exitOK)
	e.wantLine(`OK check=verify destination=default name=20262811.tgz`)
	e.wantExit(e.run("restore", "--latest", "--from", "offsite", "--to", filepath.Join(e.dir, "back")), exitOK)
	if got, _ := os.ReadFile(filepath.Join(e.dir, "back", "dump.sql")); string(got) != dump("first") {
		t.Fatal("restore --from offsite did not give the dump back")
	}
	e.wantExit(e.run("check"), exitOK)
	e.wantLine(`^OK +destination default +login to sftp://`)
	e.wantLine(`^OK +write probe offsite +wrote archive-check-probe-\S+ \(whole or not at all: s3 has no rename\), verified, deleted`)
	e.wantLine(`^OK +retention offsite +`)
	e.wantExit(e.run("list", "--from", "elsewhere"), exitUsage)
	e.wantLine(`archive: error: --from "elsewhere": no such destination`)
	e.wantExit(e.run("verify", "--from", "elsewhere"), exitUsage)
	e.wantLine(`^archive: error: --from "elsewhere": no such destination`)
	e.wantExit(e.run("status", "--from", "elsewhere"), exitUsage)
	stop()
}

// sampleArgv watches every command line while the test runs; stop reports a secret seen on one.
func sampleArgv(t *testing.T, secrets []string) (stop func()) {
	done, finished := make(chan struct{}), make(chan []string)
	go func() {
		var seen []string
		for {
			select {
			case <-done:
				finished <- seen
				return
			case <-time.After(20 * time.Millisecond):
			}
			out, _ := exec.Command("ps", "-eo", "args=").Output()
			for _, s := range secrets {
				if s != "" && strings.Contains(string(out), s) {
					seen = append(seen, s[:4]+"...")
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			if seen := <-finished; len(seen) > 0 {
				t.Errorf("a secret was on a command line (ps): %v", seen)
			}
		})
	}
}
