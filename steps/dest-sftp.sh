#!/usr/bin/env bash
# dest-sftp.sh: the archive server over SFTP (OpenSSH's sftp in batch mode), for any account that
# allows SFTP: a chrooted "ForceCommand internal-sftp" account, a NAS, another SFTP server.
#
# Usage: dest-sftp.sh check                  log in; the folder exists; prints hash= (read-only)
#        dest-sftp.sh put LOCAL NAME         upload LOCAL as NAME (a temporary name)
#        dest-sftp.sh rename NAME FINAL      rename NAME to FINAL, replacing FINAL (prints rename=)
#        dest-sftp.sh verify NAME SHA256 [SIZE]  the remote NAME has that size, and that sha256
#                                            when it can be proven (prints size, sha256, verified)
#        dest-sftp.sh list                   one "NAME<TAB>SIZE" line per file in the folder
#        dest-sftp.sh delete NAME            remove NAME, and prove it gone
#        dest-sftp.sh get NAME LOCAL         download NAME to LOCAL (through LOCAL.part)
# Inputs (environment):
#   ARCHIVE_DEST_HOST, ARCHIVE_DEST_USER  required
#   ARCHIVE_DEST_PORT                     default 22
#   ARCHIVE_DEST_PATH                     the folder on the server (relative to the login folder
#                                         unless absolute; default ".")
#   ARCHIVE_DEST_IDENTITY_FILE            the private key (required; no passphrase, see the guide)
#   ARCHIVE_DEST_KNOWN_HOSTS              the known_hosts file holding the server's key (required;
#                                         an unknown or changed key is refused, never accepted)
#   ARCHIVE_DEST_TIMEOUT                  seconds to connect and between packets (default 30)
#   ARCHIVE_DEST_VERIFY                   auto (default): the sha256 computed on the server when
#                                         the account may run sha256sum, else the size;
#                                         size; or download (get it back and hash it here)
# Every verb but verify's sha256 speaks SFTP only: the account needs no shell. check prints
# hash=sha256 when the account runs "sha256sum" over ssh (a shell account), hash=none otherwise.
# Exit codes (the same for every dest-*.sh):
#   0 OK                                  24 permission denied on the server
#   1 other failure                       25 no space left on the server
#   2 usage or missing input              26 the transfer was interrupted
#   20 host unreachable or refused        27 verification failed (checksum or size differs)
#   21 host key or certificate untrusted  28 timed out
#   22 login refused (user, key, password)  29 no such file on the server
#   23 the folder (or share) is missing   30 not a mount point (nfs only)
#                                         31 the server does not offer TLS (ftps only)
#                                         127 a required tool is missing
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# name NAME: a file name in the folder, one that sftp's put, get and rm take as it is (no glob).
name() { [[ -n $1 && $1 != */* && $1 != *[\"\\*?[$'\r\n']* ]] || die 2 "bad file name \"$1\""; }

# bq WORD: WORD as one argument of an sftp batch line: in double quotes, \ and " escaped.
bq() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

# batch COMMAND...: one sftp session in the folder running COMMANDs (one per argument, echo off);
# its stdout is the commands' output, its stderr in $err. A failing command ends it with 1.
batch() {
  local c
  {
    printf '@cd %s\n' "$(bq "$dir")"
    for c; do printf '@%s\n' "$c"; done
  } >"$tmp/batch"
  sftp -b "$tmp/batch" -F "$cfg" archive-dest 2>"$err"
}

# fail WHAT: the cause of the last failed session, from sftp's and ssh's own words.
fail() {
  local what=$1 msg
  # sshd's own notice for a user without a home folder is no cause: leave it out.
  msg=$(grep -v '^$\|^Could not chdir to home directory' "$err" | tail -n 1 || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  is() { grep -qi -- "$1" "$err"; }
  is 'host key verification failed\|REMOTE HOST IDENTIFICATION HAS CHANGED\|no .* host key is known' &&
    die 21 "$what: the server's host key is not the one in $ARCHIVE_DEST_KNOWN_HOSTS (unknown or changed)"
  is 'permission denied (\|too many authentication failures\|not allowed because' &&
    die 22 "$what: login refused for user $ARCHIVE_DEST_USER with key $ARCHIVE_DEST_IDENTITY_FILE"
  is 'could not resolve hostname\|connection refused\|no route to host\|network is unreachable' &&
    die 20 "$what: cannot reach $ARCHIVE_DEST_HOST port ${ARCHIVE_DEST_PORT:-22}"
  is 'timed out\|timeout' && die 28 "$what: timed out talking to $ARCHIVE_DEST_HOST"
  is 'This service allows sftp connections only' && die 22 "$what: the account allows SFTP only, and this needed ssh"
  # The session's first command is "cd": its realpath or stat failing means the folder.
  is '^stat remote: No such file\|^realpath .*No such file\|remote readdir.*No such file' && die 23 "$what: $dir does not exist on the server"
  is 'no space left\|disk quota\|quota exceeded' && die 25 "$what: no space left on the server"
  is 'permission denied' && die 24 "$what: permission denied in $dir"
  is 'connection closed\|closed by remote host\|broken pipe\|connection reset\|Couldn.t write to remote file\|Received message too long' &&
    die 26 "$what: the connection was cut during the transfer, or the server could not write (full?)"
  is 'No such file or directory\|not found' && die 29 "$what: no such file in $dir"
  die 1 "$what failed: ${msg:-sftp said nothing}"
}

# size NAME: the size of NAME in the folder, from "ls -ln"; nothing when it is not there, and
# the session's failure when it cannot tell.
size() {
  local out
  if out=$(batch "ls -lan \"$1\""); then
    awk -v n="$1" '$1 ~ /^-/ && $NF == n { print $5; exit }' <<<"$out"
  elif ! grep -q 'not found' "$err"; then
    fail "$2"
  fi
}

verb_check() {
  batch "pwd" >/dev/null || fail "connection"
  printf 'hash=%s\n' "$(remote_hash)"
}

# remote_hash: sha256 when this account runs sha256sum over ssh (detected, never assumed).
remote_hash() {
  [[ ${ARCHIVE_DEST_VERIFY:-auto} == auto ]] || { echo none; return; }
  ssh -F "$cfg" archive-dest 'command -v sha256sum' >/dev/null 2>&1 && echo sha256 || echo none
}

verb_put() {
  [[ $# == 2 && -f $1 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
  name "$2"
  # rm first, in a session of its own (a name that is not there is no cause): put would write
  # through a link planted at that name.
  batch "-rm \"$2\"" >/dev/null || true
  if ! batch "put $(bq "$1") \"$2\"" >/dev/null; then
    cp -- "$err" "$tmp/put.err"
    # SFTP servers say "Failure" for a full disk; ask the folder for room (df, in KiB).
    local need free
    need=$((($(stat -c %s -- "$1") + 1023) / 1024))
    # A failed put leaves no partial file: remove it, in a new session (the last may be cut).
    free=$(batch "-rm \"$2\"" "df" | awk 'NR == 2 { print $3 }') || true
    [[ -n $free && $free -lt $need ]] && die 25 "upload: no space left on the server (${free} KiB free, ${need} KiB needed)"
    mv -- "$tmp/put.err" "$err"
    [[ -s $err ]] || die 26 "upload: sftp stopped without a word: the connection was cut"
    fail "upload"
  fi
}

verb_rename() {
  [[ $# == 2 ]] || die 2 "usage: rename NAME FINAL"
  name "$1"
  name "$2"
  # OpenSSH's sftp renames with posix-rename@openssh.com when the server offers it: FINAL is
  # replaced atomically. A server without it refuses an existing FINAL: delete it, then rename.
  if batch "rename \"$1\" \"$2\"" >/dev/null; then
    echo rename=atomic
    return
  fi
  cp -- "$err" "$tmp/rename.err"
  local there
  there=$(size "$2" rename) || exit
  [[ -n $there ]] || { mv -- "$tmp/rename.err" "$err" && fail "rename"; }
  batch "rm \"$2\"" "rename \"$1\" \"$2\"" >/dev/null || fail "rename"
  echo rename=replace
}

verb_verify() {
  [[ $# == 2 || $# == 3 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
  name "$1"
  local got sum="" how=size
  got=$(size "$1" verify) || exit
  [[ -n $got ]] || die 29 "verify: no such file $1 in $dir"
  case ${ARCHIVE_DEST_VERIFY:-auto} in
    auto)
      if [[ $(remote_hash) == sha256 ]]; then
        sum=$(ssh -F "$cfg" archive-dest "cd $(quote "$dir") && sha256sum -- $(quote "$1")" 2>"$err" | cut -d' ' -f1) || fail "verify"
        how=sha256
      fi
      ;;
    download)
      batch "get \"$1\" $(bq "$tmp/copy")" >/dev/null || fail "verify download"
      sum=$(sha256sum -- "$tmp/copy" | cut -d' ' -f1)
      rm -f -- "$tmp/copy"
      how=download
      ;;
  esac
  verified "$1" "$2" "${3:-}" "$got" "$sum" "$how"
}

# quote WORD: for the remote POSIX shell.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

verb_list() {
  local out
  out=$(batch "ls -lan") || fail "list"
  # A file's line: mode, links, owner, group, size, three date fields, then its name; -a: the
  # names starting with a dot too (a temporary file left by a killed run).
  awk '$1 ~ /^-/ && NF >= 9 { n = $0; for (i = 1; i <= 8; i++) sub(/^[^ ]+ +/, "", n); print n "\t" $5 }' <<<"$out"
}

verb_delete() {
  [[ $# == 1 ]] || die 2 "usage: delete NAME"
  name "$1"
  batch "rm \"$1\"" >/dev/null || fail "delete"
  # Proven gone: a server may answer OK and keep the file.
  local left
  left=$(size "$1" delete) || exit
  [[ -z $left ]] || die 24 "delete: the server answered OK, but $1 is still in $dir"
}

verb_get() {
  [[ $# == 2 ]] || die 2 "usage: get NAME LOCAL"
  name "$1"
  rm -f -- "$2.part"
  batch "get \"$1\" $(bq "$2.part")" >/dev/null || { rm -f -- "$2.part"; fail "download"; }
  mv -f -- "$2.part" "$2"
}

main() {
  help "$@"
  need ARCHIVE_DEST_HOST ARCHIVE_DEST_USER ARCHIVE_DEST_IDENTITY_FILE ARCHIVE_DEST_KNOWN_HOSTS
  tools openssh-client ssh sftp
  [[ -r $ARCHIVE_DEST_KNOWN_HOSTS ]] || die 21 "cannot read known_hosts file $ARCHIVE_DEST_KNOWN_HOSTS"
  [[ -r $ARCHIVE_DEST_IDENTITY_FILE ]] || die 22 "cannot read the private key $ARCHIVE_DEST_IDENTITY_FILE"
  dir=${ARCHIVE_DEST_PATH:-.}
  [[ $dir != *[$'\r\n']* ]] || die 2 "ARCHIVE_DEST_PATH must not hold a line break"
  # Globals, not locals: the EXIT trap and fail run after main has returned or from anywhere.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  cfg=$tmp/ssh_config err=$tmp/err
  local t=${ARCHIVE_DEST_TIMEOUT:-30}
  # A config file, not -o options: paths with spaces survive.
  cat >"$cfg" <<CFG
Host archive-dest
  HostName "$ARCHIVE_DEST_HOST"
  Port ${ARCHIVE_DEST_PORT:-22}
  User "$ARCHIVE_DEST_USER"
  IdentityFile "$ARCHIVE_DEST_IDENTITY_FILE"
  IdentitiesOnly yes
  UserKnownHostsFile "$ARCHIVE_DEST_KNOWN_HOSTS"
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout $t
  ServerAliveInterval $t
  ServerAliveCountMax 2
CFG
  # Under archive, TMPDIR is the run's private work folder: the run's sftp and ssh calls share
  # one connection through a socket there, closed 3 seconds after the last call. (A socket's path
  # is limited to about 100 bytes.)
  if [[ -n ${TMPDIR:-} && -d $TMPDIR && -O $TMPDIR && ${#TMPDIR} -lt 80 ]]; then
    printf '  ControlMaster auto\n  ControlPath %s/ssh\n  ControlPersist 3\n' "$TMPDIR" >>"$cfg"
  fi
  dispatch "$@"
}

main "$@"
