#!/usr/bin/env bash
# dest-smb.sh: the archive server over SMB (a Windows or Samba share; smbclient).
#
# Usage: dest-smb.sh check                   log in; the folder exists (writing is put's test)
#        dest-smb.sh put LOCAL NAME          upload LOCAL as NAME (a temporary name)
#        dest-smb.sh rename NAME FINAL       rename NAME to FINAL, replacing FINAL
#        dest-smb.sh verify NAME SHA256 [SIZE]  the remote NAME has SIZE bytes (and that sha256
#                                            when ARCHIVE_DEST_VERIFY=download; prints size, sha256)
#        dest-smb.sh list                    one "NAME<TAB>SIZE" line per file in the folder
#        dest-smb.sh delete NAME             remove NAME
#        dest-smb.sh get NAME LOCAL          download NAME to LOCAL
# Inputs (environment):
#   ARCHIVE_DEST_HOST, ARCHIVE_DEST_USER  required
#   ARCHIVE_DEST_SHARE                    the share name (required)
#   ARCHIVE_DEST_PASSWORD_FILE            the password on its first line (required)
#   ARCHIVE_DEST_PORT                     default 445
#   ARCHIVE_DEST_PATH                     the folder inside the share ("" or "." for its top)
#   ARCHIVE_DEST_DOMAIN                   the workgroup or domain of the user (optional)
#   ARCHIVE_DEST_SMB_PROTOCOL             the protocol, lowest and highest (default SMB3)
#   ARCHIVE_DEST_TIMEOUT                  seconds for each operation (default 30)
#   ARCHIVE_DEST_VERIFY                   auto or size (the default: the size), or download (get
#                                         it back, compare its sha256)
# File names must not hold " ; \ / or line breaks (smbclient commands cannot quote them).
# Exit codes (the same for every dest-*.sh):
#   0 OK                                  24 permission denied on the server
#   1 other failure                       25 no space left on the server
#   2 usage or missing input              26 the transfer was interrupted
#   20 host unreachable or refused        27 verification failed (checksum or size differs)
#   21 host key or certificate untrusted  28 timed out
#   22 login refused (user, key, password) 29 no such file on the server
#   23 the folder (or share) is missing   30 the folder is not a mount point (nfs)
#   31 the server does not offer TLS      127 a required tool is missing
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

name() { [[ -n $1 && $1 != *[\"\;\\/$'\r\n']* ]] || die 2 "bad file name \"$1\" (no \" ; \\ / or line break)"; }

# smb COMMAND [OPTION...]: one smbclient command (its exit code is the last command's only) in the
# folder, run from $tmp so that local files are plain names. Output in $out, messages in $err.
smb() {
  (cd -- "$tmp" && smbclient "//$ARCHIVE_DEST_HOST/$ARCHIVE_DEST_SHARE" "${opts[@]}" "${@:2}" -c "$1") >"$out" 2>"$err"
}

# fail RC WHAT: turn an smbclient failure into the step's exit code and cause. The statuses of
# all its lines count: a cut connection may end in a vaguer one (NT_STATUS_INVALID_PARAMETER).
fail() {
  local rc=$1 what=$2 msg
  cat -- "$out" "$err" >"$tmp/all" 2>/dev/null || true
  msg=$(grep -a 'NT_STATUS_\|failed' "$tmp/all" | tail -n 1 || true)
  [[ -n $msg ]] || msg=$(grep -av '^\s*$' "$tmp/all" | tail -n 1 || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  [[ $msg == "protocol negotiation failed"* ]] &&
    die 1 "$what: the server does not speak ${ARCHIVE_DEST_SMB_PROTOCOL:-SMB3} (ARCHIVE_DEST_SMB_PROTOCOL)"
  grep -q '^cd .*NT_STATUS_OBJECT_[A-Z]*_NOT_FOUND' "$tmp/all" && die 23 "$what: the folder $dir does not exist in share $ARCHIVE_DEST_SHARE"
  is 'LOGON_FAILURE\|WRONG_PASSWORD\|ACCOUNT_' && die 22 "$what: login refused for user $ARCHIVE_DEST_USER with the password in $ARCHIVE_DEST_PASSWORD_FILE"
  is BAD_NETWORK_NAME && die 23 "$what: the share $ARCHIVE_DEST_SHARE does not exist on $ARCHIVE_DEST_HOST"
  is 'CONNECTION_REFUSED\|HOST_UNREACHABLE\|NETWORK_UNREACHABLE\|BAD_NETWORK_PATH' && die 20 "$what: cannot reach $ARCHIVE_DEST_HOST port $port"
  is IO_TIMEOUT && die 28 "$what: timed out talking to $ARCHIVE_DEST_HOST"
  # 141: smbclient killed by SIGPIPE, writing to a connection the server closed.
  if [[ $rc == 141 ]] || is 'CONNECTION_DISCONNECTED\|CONNECTION_RESET\|CONNECTION_ABORTED\|PIPE_BROKEN'; then
    die 26 "$what: the connection was cut during the transfer"
  fi
  is 'DISK_FULL\|QUOTA_EXCEEDED' && die 25 "$what: no space left on the server"
  is 'ACCESS_DENIED\|CANNOT_DELETE\|SHARING_VIOLATION' && die 24 "$what: permission denied in $dir"
  is 'OBJECT_NAME_NOT_FOUND\|OBJECT_PATH_NOT_FOUND\|NO_SUCH_FILE' && die 29 "$what: no such file in $dir"
  die 1 "$what failed: ${msg:-smbclient said nothing} (smbclient code $rc)"
}

is() { grep -q "NT_STATUS_\($1\)" "$tmp/all"; }

# files: the "NAME<TAB>SIZE" lines of an smbclient ls; a line is "  NAME  ATTRS  SIZE  DATE".
files() {
  LC_ALL=C awk '/^  .* [A-Z]* +[0-9]+  [A-Z][a-z][a-z] [A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]+ [0-9]+$/ {
    size = $(NF - 5); attrs = $(NF - 6); line = $0
    sub(/^  /, "", line); sub(/ +[A-Z]* +[0-9]+  [A-Z][a-z][a-z] [A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]+ [0-9]+$/, "", line)
    if (attrs !~ /D/) print line "\t" size }' "$out"
}

verb_check() {
  # Log in and enter the folder; writing is put's test, as for every protocol.
  smb "ls" >/dev/null || fail "$?" "connection"
}

verb_put() {
  [[ $# == 2 && -f $1 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
  name "$2"
  ln -s -- "$(realpath -- "$1")" "$tmp/local"
  smb "put local \"$2\"" || rc=$?
  if [[ $rc != 0 ]]; then
    mv -- "$out" "$tmp/put.out" && mv -- "$err" "$tmp/put.err"
    smb "del \"$2\"" || true
    out=$tmp/put.out err=$tmp/put.err
    fail "$rc" "upload"
  fi
}

verb_rename() {
  [[ $# == 2 ]] || die 2 "usage: rename NAME FINAL"
  name "$1" && name "$2"
  # -f replaces FINAL in one step (SMB2 and later); a server that refuses: delete, rename.
  smb "rename \"$1\" \"$2\" -f" || rc=$?
  if [[ $rc != 0 ]] && grep -q NT_STATUS_OBJECT_NAME_COLLISION "$out" "$err"; then
    smb "del \"$2\"" || fail "$?" "rename"
    smb "rename \"$1\" \"$2\"" || fail "$?" "rename"
    echo rename=replace
  elif [[ $rc != 0 ]]; then
    fail "$rc" "rename"
  else
    echo rename=atomic
  fi
}

verb_verify() {
  [[ $# == 2 || $# == 3 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
  name "$1"
  [[ $# == 3 || $mode == download ]] || die 2 "verify needs SIZE (SMB cannot hash remotely) or ARCHIVE_DEST_VERIFY=download"
  local size sum=
  smb "ls \"$1\"" || fail "$?" "verify"
  size=$(files | cut -f2)
  if [[ $mode == download ]]; then
    # -E: smbclient's messages to stderr, the file alone to stdout, through a FIFO to sha256sum.
    mkfifo "$tmp/fifo"
    sha256sum <"$tmp/fifo" >"$tmp/sum" &
    out=$tmp/fifo
    smb "get \"$1\" -" -E || rc=$?
    wait "$!" || true
    out=/dev/null
    [[ $rc == 0 ]] || fail "$rc" "verify download"
    sum=$(cut -d' ' -f1 "$tmp/sum")
  fi
  verified "$1" "$2" "${3:-}" "$size" "$sum" "$mode"
}

verb_list() {
  smb "ls" || fail "$?" "list"
  files
}

verb_delete() {
  [[ $# == 1 ]] || die 2 "usage: delete NAME"
  name "$1"
  smb "del \"$1\"" || fail "$?" "delete"
  # smbclient exits 0 when the server refuses a deletion: its NT_STATUS says so.
  if grep -q 'NT_STATUS_' "$out" "$err"; then fail 0 "delete"; fi
}

verb_get() {
  [[ $# == 2 ]] || die 2 "usage: get NAME LOCAL"
  name "$1"
  out=$(realpath -m -- "$2")
  : 2>/dev/null >"$out" || die 1 "download: cannot write $2"
  smb "get \"$1\" -" -E || { rc=$?; rm -f -- "$out"; out=/dev/null; fail "$rc" "download"; }
}

main() {
  help "$@"
  need ARCHIVE_DEST_HOST ARCHIVE_DEST_USER ARCHIVE_DEST_SHARE ARCHIVE_DEST_PASSWORD_FILE
  tools smbclient smbclient
  read_password "$ARCHIVE_DEST_PASSWORD_FILE" 22

  # Globals, not locals: the EXIT trap and fail run after main has returned or from anywhere.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  out=$tmp/out err=$tmp/err port=${ARCHIVE_DEST_PORT:-445} dir=${ARCHIVE_DEST_PATH:-.}
  local proto=${ARCHIVE_DEST_SMB_PROTOCOL:-SMB3} mode=${ARCHIVE_DEST_VERIFY:-auto} rc=0
  [[ $mode == auto ]] && mode=size
  [[ $mode == size || $mode == download ]] || die 2 "ARCHIVE_DEST_VERIFY must be auto, size or download, not \"$mode\""
  # The login goes to smbclient in a file (-A), never on its command line.
  printf 'username = %s\npassword = %s\n' "$ARCHIVE_DEST_USER" "$password" >"$tmp/auth"
  [[ -n ${ARCHIVE_DEST_DOMAIN:-} ]] && printf 'domain = %s\n' "$ARCHIVE_DEST_DOMAIN" >>"$tmp/auth"
  opts=(-p "$port" -A "$tmp/auth" -m "$proto" --option="client min protocol=$proto" -t "${ARCHIVE_DEST_TIMEOUT:-30}")
  [[ $dir == . || $dir == ./ ]] || opts+=(-D "$dir")

  dispatch "$@"
}

main "$@"
