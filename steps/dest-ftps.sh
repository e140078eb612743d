#!/usr/bin/env bash
# dest-ftps.sh: the archive server over FTP with explicit TLS (curl; never plain FTP).
#
# Usage: dest-ftps.sh check                  log in; the folder exists (writing is put's test)
#        dest-ftps.sh put LOCAL NAME         upload LOCAL as NAME (a temporary name)
#        dest-ftps.sh rename NAME FINAL      rename NAME to FINAL, replacing FINAL
#        dest-ftps.sh verify NAME SHA256 [SIZE]  the remote NAME has SIZE bytes (and that sha256
#                                            when ARCHIVE_DEST_VERIFY=download; prints size, sha256)
#        dest-ftps.sh list                   one "NAME<TAB>SIZE" line per file in the folder
#        dest-ftps.sh delete NAME            remove NAME
#        dest-ftps.sh get NAME LOCAL         download NAME to LOCAL
# Inputs (environment):
#   ARCHIVE_DEST_HOST, ARCHIVE_DEST_USER  required
#   ARCHIVE_DEST_PASSWORD_FILE            the password on its first line (required)
#   ARCHIVE_DEST_PORT                     default 21
#   ARCHIVE_DEST_PATH                     the folder (relative to the login folder unless absolute;
#                                         default ".")
#   ARCHIVE_DEST_CA_FILE                  the CA that signed the server's certificate when it is
#                                         not a public one (the certificate is always verified)
#   ARCHIVE_DEST_TIMEOUT                  seconds to connect and without progress (default 30)
#   ARCHIVE_DEST_VERIFY                   auto or size (the default: the size), or download (get
#                                         it back, compare its sha256)
# The server must offer AUTH TLS and accept "LIST -a" (vsftpd, proftpd, pure-ftpd do).
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

# name NAME: a file name in the folder, as FTP commands carry it (no slash, no line break).
name() { [[ -n $1 && $1 != */* && $1 != *[$'\r\n']* ]] || die 2 "bad file name \"$1\""; }

# run CURL_ARGS...: curl with the login read from stdin (never in argv), stderr to $err.
run() { curl "${opts[@]}" -K - "$@" <<<"$login" 2>"$err"; }

# fail RC WHAT: turn a curl failure into the step's exit code and cause.
fail() {
  local rc=$1 what=$2 msg
  msg=$(grep '^curl: (' "$err" | tail -n 1 || true)
  [[ -n $msg ]] || msg=$(grep -v '^$' "$err" | tail -n 1 || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  local full=' (45[12]|552)$'
  case $rc in
    6 | 7) die 20 "$what: cannot reach $ARCHIVE_DEST_HOST port $port" ;;
    35) die 1 "$what: the TLS handshake with $ARCHIVE_DEST_HOST failed (this script speaks TLS 1.2)" ;;
    51 | 58 | 60 | 77 | 83) die 21 "$what: the server's certificate is not trusted${ARCHIVE_DEST_CA_FILE:+ by the CA in $ARCHIVE_DEST_CA_FILE}" ;;
    64) die 31 "$what: the server does not offer TLS (AUTH TLS); plain FTP is never used" ;;
    67) die 22 "$what: login refused for user $ARCHIVE_DEST_USER with the password in $ARCHIVE_DEST_PASSWORD_FILE" ;;
    9) die 23 "$what: the folder $dir does not exist on the server (or may not be entered)" ;;
    78) die 29 "$what: no such file in $dir" ;;
    12 | 28) die 28 "$what: timed out talking to $ARCHIVE_DEST_HOST" ;;
    18 | 21 | 25) [[ $msg =~ $full ]] && die 25 "$what: no space left on the server" ;;&
    21 | 25) die 24 "$what: permission denied in $dir" ;;
    18 | 52 | 55 | 56) die 26 "$what: the connection was cut during the transfer" ;;
  esac
  die 1 "$what failed (curl code $rc)"
}

verb_check() {
  # Log in and enter the folder; writing is put's test, as for every protocol.
  run -X 'LIST -a' -o /dev/null "$url" || fail "$?" "connection"
}

verb_put() {
  [[ $# == 2 && -f $1 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
  name "$2"
  run -T "$1" "$url$(urlencode "$2")" || rc=$?
  if [[ $rc != 0 ]]; then
    mv -- "$err" "$tmp/put.err"
    run -I -Q "+DELE $2" "$url" || true
    err=$tmp/put.err
    fail "$rc" "upload"
  fi
}

verb_rename() {
  [[ $# == 2 ]] || die 2 "usage: rename NAME FINAL"
  name "$1" && name "$2"
  # -I first: a missing NAME is curl 78. vsftpd and most servers replace FINAL on RNTO; for
  # the others (RNTO refused, curl 21) delete FINAL and rename again.
  local how=atomic
  run -I -Q "-RNFR $1" -Q "-RNTO $2" "$url$(urlencode "$1")" >/dev/null || rc=$?
  [[ $rc == 21 ]] && { rc=0 how=replace; run -I -Q "-*DELE $2" -Q "-RNFR $1" -Q "-RNTO $2" "$url$(urlencode "$1")" >/dev/null || rc=$?; }
  [[ $rc == 0 ]] || fail "$rc" "rename"
  printf 'rename=%s\n' "$how"
}

verb_verify() {
  [[ $# == 2 || $# == 3 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
  name "$1"
  [[ $# == 3 || $mode == download ]] || die 2 "verify needs SIZE (FTP cannot hash remotely) or ARCHIVE_DEST_VERIFY=download"
  out=$(run -I "$url$(urlencode "$1")") || fail "$?" "verify"
  local size sum
  size=$(tr -d '\r' <<<"$out" | sed -n 's/^Content-Length: *//Ip')
  if [[ $mode == download ]]; then
    sum=$(run "$url$(urlencode "$1")" | sha256sum | cut -d' ' -f1) || fail "$?" "verify download"
  fi
  verified "$1" "$2" "${3:-}" "$size" "${sum:-}" "$mode"
}

verb_list() {
  # "LIST -a": vsftpd hides dot files (our temporary names) from a plain LIST.
  out=$(run -X 'LIST -a' "$url") || fail "$?" "list"
  tr -d '\r' <<<"$out" | awk '/^-/ { s = $5; for (i = 0; i < 8; i++) sub(/^[^ ]+ +/, ""); print $0 "\t" s }'
}

verb_delete() {
  [[ $# == 1 ]] || die 2 "usage: delete NAME"
  name "$1"
  run -I -Q "-DELE $1" "$url$(urlencode "$1")" >/dev/null || fail "$?" "delete"
}

verb_get() {
  [[ $# == 2 ]] || die 2 "usage: get NAME LOCAL"
  name "$1"
  run -o "$2.part" "$url$(urlencode "$1")" || { rc=$?; rm -f -- "$2.part"; fail "$rc" "download"; }
  mv -f -- "$2.part" "$2"
}

main() {
  help "$@"
  need ARCHIVE_DEST_HOST ARCHIVE_DEST_USER ARCHIVE_DEST_PASSWORD_FILE
  tools curl curl
  read_password "$ARCHIVE_DEST_PASSWORD_FILE" 22

  # Globals, not locals: the EXIT trap and fail run after main has returned or from anywhere.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  err=$tmp/err port=${ARCHIVE_DEST_PORT:-21} dir=${ARCHIVE_DEST_PATH:-.}
  local t=${ARCHIVE_DEST_TIMEOUT:-30} host=$ARCHIVE_DEST_HOST mode=${ARCHIVE_DEST_VERIFY:-auto} path
  [[ $mode == auto ]] && mode=size
  [[ $mode == size || $mode == download ]] || die 2 "ARCHIVE_DEST_VERIFY must be auto, size or download, not \"$mode\""
  [[ $host == *:* ]] && host="[$host]"
  path=${dir#./}
  [[ $path == / ]] || path=${path%/}
  [[ $path == . ]] && path=
  # A leading "/" in the folder becomes "//" in the URL: curl then starts with "CWD /".
  local url
  url="ftp://$host:$port/$(urlencode "$path" /)${path:+/}"
  # A curl config line: inside double quotes, backslash and double quote are escaped.
  login=$(curl_login "$ARCHIVE_DEST_USER" "$password")
  # curl before 8.9 may lose the end of an upload over TLS 1.3 (curl/curl#6149, vsftpd replies 426).
  opts=(-q -sS --ssl-reqd --tls-max 1.2 --connect-timeout "$t" --speed-limit 1 --speed-time "$t")
  [[ -n ${ARCHIVE_DEST_CA_FILE:-} ]] && opts+=(--cacert "$ARCHIVE_DEST_CA_FILE")

  local rc=0 out
  dispatch "$@"
}

main "$@"
