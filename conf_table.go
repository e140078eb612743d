package main

import "time"

// The conf is this one table. loadConf reads and checks every key by its row, fills the Conf
// field the row names, and rejects any key that has no row; archive.conf's commented defaults and
// the documents' key tables are tested against it (conf_test.go, docs_test.go).
//
// A row: section, key, default, kind (how its value is read and checked), the field it fills,
// and for [destination] the protocols that read it (nil: every one). A key outside its protocols
// is ignored, so switching protocol is changing the keys of that protocol and nothing else. The
// rows of [destination] and [retention] fill a Destination, one per destination section
// ([destination], [destination NAME]); the others fill the Conf.
var confKeys = []confKey{
	{s: "source", k: "url", kind: httpsURL, req: true, field: "URL"},
	{s: "source", k: "expected_file", kind: fileName, req: true, field: "ExpectedFile"},
	{s: "source", k: "ca_file", kind: readable, field: "SourceCA"},
	{s: "source", k: "timeout", def: "600", kind: seconds, lo: 1, hi: week, field: "Timeout"},
	{s: "source", k: "retries", def: "2", kind: integer, lo: 0, hi: 20, field: "Retries"},
	{s: "source", k: "retry_delay", def: "10", kind: seconds, lo: 0, hi: 3600, field: "RetryDelay"},
	{s: "source", k: "min_size", def: "1", kind: size, field: "MinSize"},
	{s: "source", k: "max_size", def: "64G", kind: size, field: "MaxSize"},
	{s: "source", k: "max_shrink", def: "50", kind: integer, lo: 1, hi: 100, field: "MaxShrink"},
	{s: "source", k: "conditional", def: "yes", kind: yesOrNo, field: "Conditional"},

	{s: "archive", k: "name_format", def: "%Y%d%m", kind: nameFormat, field: "NameFormat"},
	{s: "archive", k: "work_dir", def: "/var/lib/archive/work", kind: localPath, req: true, field: "WorkDir"},
	{s: "archive", k: "state_dir", def: "/var/lib/archive", kind: localPath, req: true, field: "StateDir"},
	{s: "archive", k: "on_unchanged", def: "skip", kind: choice, choices: []string{"skip", "fail", "archive"}, field: "OnUnchanged"},
	{s: "archive", k: "compressor", def: "auto", kind: choice, choices: []string{"auto", "gzip", "pigz", "reuse"}, field: "Compressor"},
	{s: "archive", k: "encrypt_to", kind: readable, field: "EncryptTo"},
	{s: "archive", k: "compression_level", def: "6", kind: integer, lo: 1, hi: 9, field: "CompressionLevel"},
	{s: "archive", k: "timeout", def: "7200", kind: seconds, lo: 1, hi: week, field: "PackTimeout"},
	{s: "archive", k: "max_unchanged_days", def: "3", kind: integer, lo: 0, hi: 3650, field: "MaxUnchangedDays"},
	{s: "archive", k: "allow_root", def: "yes", kind: yesOrNo, field: "AllowRoot"},

	{s: "destination", k: "protocol", def: "sftp", kind: choice, choices: protocols, field: "Protocol"},
	{s: "destination", k: "host", kind: text, req: true, protos: []string{"sftp", "ftps", "smb"}, field: "Host"},
	{s: "destination", k: "port", kind: port, protos: []string{"sftp", "ftps", "smb"}, field: "Port"},
	{s: "destination", k: "user", kind: text, req: true, protos: []string{"sftp", "ftps", "webdav", "smb"}, field: "User"},
	{s: "destination", k: "path", def: ".", kind: text, protos: []string{"sftp", "ftps", "webdav", "smb"}, field: "DestPath"},
	{s: "destination", k: "path", kind: localPath, req: true, protos: []string{"nfs"}, field: "DestPath"},
	{s: "destination", k: "identity_file", kind: secretFile, req: true, protos: []string{"sftp"}, field: "IdentityFile"},
	{s: "destination", k: "known_hosts", kind: readable, req: true, protos: []string{"sftp"}, field: "KnownHosts"},
	{s: "destination", k: "password_file", kind: secretFile, req: true, protos: []string{"ftps", "webdav", "smb"}, field: "PasswordFile"},
	{s: "destination", k: "url", kind: httpsURL, req: true, protos: []string{"webdav"}, field: "DestURL"},
	{s: "destination", k: "share", kind: text, req: true, protos: []string{"smb"}, field: "Share"},
	{s: "destination", k: "domain", kind: text, protos: []string{"smb"}, field: "Domain"},
	{s: "destination", k: "smb_protocol", def: "SMB3", kind: choice, choices: []string{"SMB2", "SMB3"}, protos: []string{"smb"}, field: "SMBProtocol"},
	{s: "destination", k: "endpoint", kind: httpsURL, req: true, protos: []string{"s3"}, field: "Endpoint"},
	{s: "destination", k: "region", def: "us-east-1", kind: text, protos: []string{"s3"}, field: "Region"},
	{s: "destination", k: "bucket", kind: text, req: true, protos: []string{"s3"}, field: "Bucket"},
	{s: "destination", k: "prefix", kind: text, protos: []string{"s3"}, field: "Prefix"},
	{s: "destination", k: "access_key_file", kind: secretFile, req: true, protos: []string{"s3"}, field: "AccessKeyFile"},
	{s: "destination", k: "addressing", def: "path", kind: choice, choices: []string{"path", "virtual"}, protos: []string{"s3"}, field: "Addressing"},
	{s: "destination", k: "part_size", def: "64M", kind: size, protos: []string{"s3"}, field: "PartSize"},
	{s: "destination", k: "ca_file", kind: readable, protos: []string{"ftps", "webdav", "s3"}, field: "DestCA"},
	{s: "destination", k: "verify", def: "auto", kind: choice, choices: []string{"auto", "size", "download"}, protos: []string{"sftp", "ftps", "webdav", "smb", "s3"}, field: "Verify"},
	{s: "destination", k: "require_mount", def: "yes", kind: yesOrNo, protos: []string{"nfs"}, field: "RequireMount"},
	{s: "destination", k: "timeout", def: "30", kind: seconds, lo: 1, hi: week, field: "DestTimeout"},
	{s: "destination", k: "transfer_timeout", def: "7200", kind: seconds, lo: 1, hi: week, field: "TransferTimeout"},

	// [retention] is every destination's, unless its own section gives the key.
	{s: "retention", k: "history", def: "yes", kind: yesOrNo, field: "History"},
	{s: "retention", k: "keep_days", def: "30", kind: integer, lo: 0, hi: 100000, field: "KeepDays"},
	{s: "retention", k: "keep_min", def: "7", kind: integer, lo: 1, hi: 100000, field: "KeepMin"},

	{s: "verify", k: "download", def: "no", kind: yesOrNo, field: "VerifyDownload"},
	{s: "verify", k: "sample", def: "0", kind: integer, lo: 0, hi: 100000, field: "VerifySample"},

	{s: "log", k: "file", def: "/var/log/archive/archive.log", kind: localPath, field: "LogFile"},

	// [mail]: which keys are required depends on send, transport and smtp_user (mailRules).
	{s: "mail", k: "send", def: "never", kind: choice, choices: []string{"never", "failure", "always"}, field: "Mail.Send"},
	{s: "mail", k: "to", kind: addresses, field: "Mail.To"},
	{s: "mail", k: "from", kind: address, field: "Mail.From"},
	{s: "mail", k: "subject_success", def: "[archive] SUCCESS {name} on {host}", kind: text, field: "Mail.SubjectSuccess"},
	{s: "mail", k: "subject_warning", def: "[archive] WARNING at {check} on {host}: {cause}", kind: text, field: "Mail.SubjectWarning"},
	{s: "mail", k: "subject_failure", def: "[archive] FAILED at {check} on {host}: {cause}", kind: text, field: "Mail.SubjectFailure"},
	{s: "mail", k: "attach_log", def: "failure", kind: choice, choices: []string{"never", "failure", "always"}, field: "Mail.AttachLog"},
	{s: "mail", k: "transport", def: "mta", kind: choice, choices: []string{"mta", "smtp", "smtps"}, field: "Mail.Transport"},
	{s: "mail", k: "smtp_host", kind: text, field: "Mail.Host"},
	{s: "mail", k: "smtp_port", kind: port, field: "Mail.Port"},
	{s: "mail", k: "starttls", def: "yes", kind: yesOrNo, field: "Mail.StartTLS"},
	{s: "mail", k: "smtp_user", kind: text, field: "Mail.User"},
	{s: "mail", k: "smtp_password_file", kind: secretFile, field: "Mail.PasswordFile"},
	{s: "mail", k: "ca_file", kind: readable, field: "Mail.CAFile"},
	{s: "mail", k: "timeout", def: "60", kind: seconds, lo: 1, hi: week, field: "Mail.Timeout"},

	{s: "monitor", k: "ping_url", kind: httpURL, field: "PingURL"},
	{s: "monitor", k: "ca_file", kind: readable, field: "PingCA"},
	{s: "monitor", k: "timeout", def: "10", kind: seconds, lo: 1, hi: week, field: "PingTimeout"},
}

// destProtocols is all that Go knows of each destination protocol, one row each; its keys are the
// rows of confKeys whose protos name it, and its script is steps/dest-NAME.sh (the contract: the
// technical memo, section 4.9). Adding a protocol is that script, a row here and its keys.
var destProtocols = []destProtocol{
	{name: "sftp", port: 22, tools: []string{"ssh", "sftp"}, shown: "sftp://{user}@{host}:{port}{path}"},
	{name: "ftps", port: 21, tools: []string{"curl"}, shown: "ftps://{user}@{host}:{port}{path}", keys: map[int]string{21: "ca_file"}},
	{name: "webdav", tools: []string{"curl"}, shown: "{url}",
		keys: map[int]string{1: "url", 20: "url", 21: "ca_file", 23: "url", 24: "url", 25: "url", 27: "url", 29: "url"}},
	{name: "smb", port: 445, tools: []string{"smbclient"}, shown: "smb://{user}@{host}:{port}/{share}/{folder}", keys: map[int]string{23: "share"}},
	{name: "nfs", tools: []string{"mountpoint", "timeout"}, shown: "nfs:{folder}"},
	{name: "s3", tools: []string{"curl", "sha256sum", "base64"}, shown: "s3://{bucket}/{prefix}", atomicPut: true,
		keys: map[int]string{1: "endpoint", 20: "endpoint", 21: "ca_file", 22: "access_key_file", 23: "bucket", 24: "access_key_file", 25: "bucket", 27: "bucket", 29: "prefix"}},
}

// destProtocol: its default port; the tools its script needs (archive check lists them); how the
// log shows where it is; the [destination] key a cause of its script points at, where that is not
// destCauses' own; and atomicPut for a server whose upload appears whole or not at all (S3: an
// object has no rename, and put writes the final name).
type destProtocol struct {
	name      string
	port      int
	tools     []string
	shown     string
	keys      map[int]string
	atomicPut bool
}

var protocols = func() (names []string) {
	for _, p := range destProtocols {
		names = append(names, p.name)
	}
	return names
}()

func protocolOf(name string) destProtocol {
	for _, p := range destProtocols {
		if p.name == name {
			return p
		}
	}
	return destProtocol{}
}

// mailPorts fill an empty [mail] smtp_port, by transport.
var mailPorts = map[string]int{"smtp": 587, "smtps": 465}

const week = 7 * 24 * 3600

// Conf is the validated configuration. Durations are whole seconds in the file.
type Conf struct {
	Path string // the conf file itself

	URL          string
	ExpectedFile string
	SourceCA     string
	Timeout      time.Duration
	Retries      int
	RetryDelay   time.Duration
	MinSize      int64
	MaxSize      int64
	MaxShrink    int  // percent a dump may shrink from the last archived one; 100: any
	Conditional  bool // send the last archived zip's strong ETag; 304 means unchanged

	NameFormat       string
	WorkDir          string
	StateDir         string
	OnUnchanged      string
	Compressor       string
	EncryptTo        string // a file of age recipients; "": archives are not encrypted
	CompressionLevel int
	PackTimeout      time.Duration
	MaxUnchangedDays int
	AllowRoot        bool

	// Dests are the destination sections, [destination] first, then [destination NAME] in the
	// order of the file: every run delivers the archive to each.
	Dests []*Destination

	VerifyDownload bool // archive verify downloads every archive, even where the server can hash
	VerifySample   int  // archive verify checks this many archives (newest and oldest among them); 0: all

	LogFile string

	Mail mailConf

	PingURL     string
	PingCA      string
	PingTimeout time.Duration

	// Warnings are problems worth a line in the log that do not stop the run.
	Warnings []string
}

// Destination is one destination section: where the archives go, how to reach the server, and
// its retention ([retention], or the section's own keys).
type Destination struct {
	Name     string // "" for [destination]; NAME for [destination NAME]
	StateDir string // its records: state_dir for [destination], state_dir/dest-NAME for the others

	Protocol        string
	Host            string
	Port            int
	User            string
	DestPath        string
	IdentityFile    string
	KnownHosts      string
	PasswordFile    string
	DestURL         string
	Share           string
	Domain          string
	SMBProtocol     string
	Endpoint        string
	Region          string
	Bucket          string
	Prefix          string
	AccessKeyFile   string
	Addressing      string
	PartSize        int64
	DestCA          string
	Verify          string
	RequireMount    bool
	DestTimeout     time.Duration
	TransferTimeout time.Duration

	History  bool
	KeepDays int
	KeepMin  int
}

// section is the destination's conf section, as a key's name in a message starts: [section] key.
func (d *Destination) section() string {
	if d.Name == "" {
		return "destination"
	}
	return "destination " + d.Name
}

// label is how the log, the mail and --from name the destination: NAME, or "default" for
// [destination].
func (d *Destination) label() string {
	if d.Name == "" {
		return defaultDest
	}
	return d.Name
}

const defaultDest = "default"

// mailConf is the [mail] section. Usable tells whether it is sound enough to send a failure
// mail even when the rest of the conf is not.
type mailConf struct {
	Send, To, From, Transport, Host, User, PasswordFile, CAFile, AttachLog string
	SubjectSuccess, SubjectWarning, SubjectFailure                         string
	Port                                                                   int
	StartTLS                                                               bool
	Timeout                                                                time.Duration
	Usable                                                                 bool
}
