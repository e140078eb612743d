#!/usr/bin/env bash
# dest-nfs.sh: the archive server as a mounted folder (NFS, or any mounted file system).
#
# Usage: dest-nfs.sh check                   the folder exists and is mounted (writing is put's test)
#        dest-nfs.sh put LOCAL NAME          copy LOCAL as NAME (a temporary name), synced to disk
#        dest-nfs.sh rename NAME FINAL       rename NAME to FINAL, replacing FINAL atomically
#        dest-nfs.sh verify NAME SHA256 [SIZE]  NAME has that sha256 (and SIZE bytes; prints
#                                            size, sha256)
#        dest-nfs.sh list                    one "NAME<TAB>SIZE" line per file in the folder
#        dest-nfs.sh delete NAME             remove NAME
#        dest-nfs.sh get NAME LOCAL          copy NAME to LOCAL
# Inputs (environment):
#   ARCHIVE_DEST_PATH                     the mounted folder on this machine (required)
#   ARCHIVE_DEST_REQUIRE_MOUNT            yes (default): refuse a folder that is not a mount point,
#                                         so that an unmounted share never fills the local disk
#                                         (the folder must be the mount point itself); no: allow
#   ARCHIVE_DEST_TIMEOUT                  seconds the folder may take to answer first (a hung
#                                         mount; default 30)
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

name() { [[ -n $1 && $1 != */* && $1 != . && $1 != .. ]] || die 2 "bad file name \"$1\""; }

# fail WHAT: turn a failed file operation into the step's exit code and cause.
fail() {
  local what=$1 msg
  msg=$(grep -v '^$' "$err" | tail -n 1 || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  grep -qi 'no space left\|disk quota' "$err" && die 25 "$what: no space left in $dir"
  grep -qi 'permission denied\|read-only file system\|operation not permitted' "$err" && die 24 "$what: permission denied in $dir"
  grep -qi 'stale file handle\|input/output error\|host is down' "$err" && die 26 "$what: the mount of $dir failed during the operation"
  die 1 "$what failed"
}

# The folder was found (and is a mount point) before any verb: check has nothing more to do;
# writing is put's test, as for every protocol.
verb_check() { :; }

verb_put() {
  [[ $# == 2 && -f $1 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
  name "$2"
  # --remove-destination: a link planted at NAME is removed, never written through. sync: the
  # data is on the server before the rename makes it final.
  if ! { cp --remove-destination -- "$1" "$dir/$2" && sync -- "$dir/$2"; } 2>"$err"; then
    rm -f -- "$dir/$2"
    fail "copy"
  fi
}

verb_rename() {
  [[ $# == 2 ]] || die 2 "usage: rename NAME FINAL"
  name "$1"
  name "$2"
  [[ -f $dir/$1 && ! -L $dir/$1 ]] || die 29 "rename: no such file $1 in $dir (or it is a link)"
  { mv -f -- "$dir/$1" "$dir/$2" && sync -- "$dir"; } 2>"$err" || fail "rename"
  echo rename=atomic
}

verb_verify() {
  [[ $# == 2 || $# == 3 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
  name "$1"
  [[ -f $dir/$1 && ! -L $dir/$1 ]] || die 29 "verify: no such file $1 in $dir (or it is a link)"
  local sum size
  sum=$(sha256sum <"$dir/$1" 2>"$err" | cut -d' ' -f1) || fail "verify"
  size=$(stat -c %s -- "$dir/$1")
  verified "$1" "$2" "${3:-}" "$size" "$sum" sha256
}

verb_list() {
  # A name holding a line break or a tab would forge a second line: such a name is never ours.
  find "$dir" -mindepth 1 -maxdepth 1 -type f ! -name '*[[:cntrl:]]*' -printf '%f\t%s\n' 2>"$err" || fail "list"
}

verb_delete() {
  [[ $# == 1 ]] || die 2 "usage: delete NAME"
  name "$1"
  [[ -f $dir/$1 ]] || die 29 "delete: no such file $1 in $dir"
  rm -f -- "$dir/$1" 2>"$err" || fail "delete"
}

verb_get() {
  [[ $# == 2 ]] || die 2 "usage: get NAME LOCAL"
  name "$1"
  [[ -f $dir/$1 ]] || die 29 "get: no such file $1 in $dir"
  cp -- "$dir/$1" "$2.part" 2>"$err" || { rm -f -- "$2.part"; fail "copy"; }
  mv -f -- "$2.part" "$2"
}

main() {
  help "$@"
  need ARCHIVE_DEST_PATH
  tools "coreutils findutils util-linux" mountpoint sha256sum find timeout
  local must=${ARCHIVE_DEST_REQUIRE_MOUNT:-yes}
  [[ $must == yes || $must == no ]] || die 2 "ARCHIVE_DEST_REQUIRE_MOUNT must be yes or no, not \"$must\""

  # Globals, not locals: the EXIT trap and fail run after main has returned or from anywhere.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  err=$tmp/err dir=${ARCHIVE_DEST_PATH%/}
  local rc=0
  # A hung NFS server blocks every file operation: probe the folder under a time limit first.
  timeout -k 5 "${ARCHIVE_DEST_TIMEOUT:-30}" test -d "$dir" || rc=$?
  [[ $rc == 124 || $rc == 137 ]] && die 28 "$dir does not answer (a hung mount?)"
  [[ $rc == 0 ]] || die 23 "the folder $dir does not exist"
  [[ $must == no ]] || mountpoint -q -- "$dir" ||
    die 30 "$dir is not a mount point: mount it, or set ARCHIVE_DEST_REQUIRE_MOUNT=no"
  dispatch "$@"
}

main "$@"
