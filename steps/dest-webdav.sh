#!/usr/bin/env bash
# dest-webdav.sh: the archive server over WebDAV on HTTPS (curl: PUT, MOVE, PROPFIND, DELETE).
#
# Usage: dest-webdav.sh check                log in; the folder exists (read-only: nothing is
#                                            created)
#        dest-webdav.sh put LOCAL NAME       upload LOCAL as NAME (a temporary name)
#        dest-webdav.sh rename NAME FINAL    rename NAME to FINAL, replacing FINAL (MOVE)
#        dest-webdav.sh verify NAME SHA256 [SIZE]  the remote NAME has SIZE bytes (and that sha256
#                                            when ARCHIVE_DEST_VERIFY=download; prints size, sha256)
#        dest-webdav.sh list                 one "NAME<TAB>SIZE" line per file in the folder
#        dest-webdav.sh delete NAME          remove NAME
#        dest-webdav.sh get NAME LOCAL       download NAME to LOCAL
# Inputs (environment):
#   ARCHIVE_DEST_URL                      the folder (collection), required, for example
#                                         https://dav.example.org/dav/archives/ (https only)
#   ARCHIVE_DEST_USER                     required (basic authentication)
#   ARCHIVE_DEST_PASSWORD_FILE            the password on its first line (required)
#   ARCHIVE_DEST_CA_FILE                  the CA that signed the server's certificate when it is
#                                         not a public one (the certificate is always verified)
#   ARCHIVE_DEST_TIMEOUT                  seconds to connect and without progress (default 30)
#   ARCHIVE_DEST_VERIFY                   auto or size (the default: the size), or download (get
#                                         it back, compare its sha256)
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
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login,
# curl_failed, urlencode, verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

name() { [[ -n $1 && $1 != */* && $1 != *[$'\r\n']* ]] || die 2 "bad file name \"$1\""; }

# http CURL_ARGS...: one request with the login read from stdin (never in argv). Returns 0 on a
# 2xx answer, else 1 with $crc (curl's code) and $code (the HTTP status) set for fail.
http() {
  crc=0
  : >"$tmp/hdr"
  curl "${opts[@]}" -K - -D "$tmp/hdr" "$@" <<<"$login" 2>"$err" || crc=$?
  code=$(awk '/^HTTP\// { c = $2 } END { print c }' "$tmp/hdr" 2>/dev/null || true)
  [[ $crc == 0 && $code == 2?? ]]
}

# fail WHAT MISSING: the cause of the last failed request; MISSING is the code for a 404 answer.
fail() {
  local what=$1 msg
  msg=$(grep '^curl: (' "$err" | tail -n 1 || true)
  [[ $crc == 0 ]] && msg=$(grep -a '^HTTP/' "$tmp/hdr" | tail -n 1 | tr -d '\r' || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  curl_failed "$what" "$crc" "$hostport"
  case $code in
    401) die 22 "$what: login refused for user $ARCHIVE_DEST_USER with the password in $ARCHIVE_DEST_PASSWORD_FILE" ;;
    403) die 24 "$what: permission denied in $base" ;;
    404) [[ $2 == 29 ]] && die 29 "$what: no such file in $base" ;;&
    404 | 409) die 23 "$what: the folder $base does not exist on the server" ;;
    413 | 507) die 25 "$what: no space left on the server (HTTP $code)" ;;
  esac
  # The server's own words: its answer's text, tags left out (a proxy's "502 Bad Gateway" page).
  local reason
  reason=$(sed -e 's/<[^>]*>/ /g' -- "$tmp/resp" 2>/dev/null | tr -s ' \t\r\n' ' ' | cut -c1-160 || true)
  die 1 "$what: the server answered HTTP ${code:-nothing}${reason:+: $reason}"
}

# props [NAME]: "NAME<TAB>SIZE" for NAME, or for every file in the folder without NAME (PROPFIND).
props() {
  local depth=1 what=list missing=23
  [[ -n $1 ]] && depth=0 what=verify missing=29
  http -o "$tmp/body" -X PROPFIND -H "Depth: $depth" -H 'Content-Type: application/xml' \
    --data '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/></prop></propfind>' \
    "$base$(urlencode "$1")" || fail "$what" "$missing"
  # One record per tag; a response without <collection/> is a file: print its last path
  # segment, XML entities and %xx decoded, and its getcontentlength.
  LC_ALL=C awk -v RS='<' '
    BEGIN { for (i = 1; i < 256; i++) { h = sprintf("%02X", i); chr[h] = sprintf("%c", i); chr[tolower(h)] = chr[h] } }
    { i = index($0, ">"); if (!i) next
      tag = substr($0, 1, i - 1); val = substr($0, i + 1); sub(/[ \t\r\n].*/, "", tag)
      end = sub(/^\//, "", tag); sub(/\/$/, "", tag); sub(/^.*:/, "", tag); gsub(/^[ \t\r\n]+|[ \t\r\n]+$/, "", val) }
    !end && tag == "response" { href = ""; len = 0; dir = 0 }
    !end && tag == "href" { href = val }
    !end && tag == "getcontentlength" { len = val }
    !end && tag == "collection" { dir = 1 }
    end && tag == "response" && !dir {
      sub(/\/$/, "", href); sub(/.*\//, "", href)
      gsub(/&lt;/, "<", href); gsub(/&gt;/, ">", href); gsub(/&quot;/, "\"", href); gsub(/&apos;/, "'\''", href); gsub(/&amp;/, "\\&", href)
      out = ""; while (match(href, /%[0-9A-Fa-f][0-9A-Fa-f]/)) { out = out substr(href, 1, RSTART - 1) chr[substr(href, RSTART + 1, 2)]; href = substr(href, RSTART + 3) }
      print out href "\t" len }' "$tmp/body"
}

# collection: the folder is there (a PROPFIND of depth 0; nothing is written).
collection() {
  http -o /dev/null -X PROPFIND -H 'Depth: 0' "$base" || fail "connection" 23
}

verb_check() {
  # Log in and find the collection; writing is put's test, as for every protocol.
  collection
}

verb_put() {
  [[ $# == 2 && -f $1 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
  name "$2"
  http -o "$tmp/resp" -T "$1" "$base$(urlencode "$2")" || rc=1
  if [[ $rc == 1 ]]; then
    local c1=$crc c2=$code
    curl "${opts[@]}" -K - -o /dev/null -X DELETE "$base$(urlencode "$2")" <<<"$login" 2>/dev/null || true
    crc=$c1 code=$c2
    fail "upload" 23
  fi
}

verb_rename() {
  [[ $# == 2 ]] || die 2 "usage: rename NAME FINAL"
  name "$1" && name "$2"
  http -o "$tmp/resp" -X MOVE -H "Destination: $base$(urlencode "$2")" -H 'Overwrite: T' "$base$(urlencode "$1")" || fail "rename" 29
  echo rename=atomic # a MOVE with Overwrite: T replaces the destination in one request
}

verb_verify() {
  [[ $# == 2 || $# == 3 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
  name "$1"
  [[ $# == 3 || $mode == download ]] || die 2 "verify needs SIZE (WebDAV cannot hash remotely) or ARCHIVE_DEST_VERIFY=download"
  local size sum=
  size=$(props "$1" | cut -f2) || exit
  if [[ $mode == download ]]; then
    http -o >(sha256sum >"$tmp/sum") "$base$(urlencode "$1")" || fail "verify download" 29
    wait "$!"
    sum=$(cut -d' ' -f1 "$tmp/sum")
  fi
  verified "$1" "$2" "${3:-}" "$size" "$sum" "$mode"
}

verb_list() {
  props ""
}

verb_delete() {
  [[ $# == 1 ]] || die 2 "usage: delete NAME"
  name "$1"
  http -o "$tmp/resp" -X DELETE "$base$(urlencode "$1")" || fail "delete" 29
}

verb_get() {
  [[ $# == 2 ]] || die 2 "usage: get NAME LOCAL"
  name "$1"
  # Without --fail curl would write an error page: it goes to LOCAL.part, removed then.
  http -o "$2.part" "$base$(urlencode "$1")" || { rm -f -- "$2.part"; fail "download" 29; }
  mv -f -- "$2.part" "$2"
}

main() {
  help "$@"
  need ARCHIVE_DEST_URL ARCHIVE_DEST_USER ARCHIVE_DEST_PASSWORD_FILE
  [[ $ARCHIVE_DEST_URL == https://?* ]] || die 2 "ARCHIVE_DEST_URL must start with https:// (TLS is required)"
  tools curl curl
  read_password "$ARCHIVE_DEST_PASSWORD_FILE" 22

  # Globals, not locals: the EXIT trap and fail run after main has returned or from anywhere.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  err=$tmp/err base=${ARCHIVE_DEST_URL// /%20}
  base=${base%/}/ hostport=${base#https://}
  hostport=${hostport%%/*}
  local t=${ARCHIVE_DEST_TIMEOUT:-30} mode=${ARCHIVE_DEST_VERIFY:-auto} rc=0
  [[ $mode == auto ]] && mode=size
  [[ $mode == size || $mode == download ]] || die 2 "ARCHIVE_DEST_VERIFY must be auto, size or download, not \"$mode\""
  # A curl config line: inside double quotes, backslash and double quote are escaped.
  login=$(curl_login "$ARCHIVE_DEST_USER" "$password")
  opts=(-q -sS --proto "=https" --connect-timeout "$t" --speed-limit 1 --speed-time "$t")
  [[ -n ${ARCHIVE_DEST_CA_FILE:-} ]] && opts+=(--cacert "$ARCHIVE_DEST_CA_FILE")

  dispatch "$@"
}

main "$@"
