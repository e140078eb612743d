#!/usr/bin/env bash
# pack.sh: pack the SQL file into a .tgz and prove the result is a valid gzip tar.
#
# Usage: pack.sh SQL TGZ     writes TGZ (as TGZ.part until checked) holding SQL under its own name
# Inputs (environment):
#   ARCHIVE_COMPRESSOR         auto (pigz when installed, else gzip) | gzip | pigz (default auto)
#   ARCHIVE_COMPRESSION_LEVEL  1 (fast) to 9 (small) (default 6)
# Output (stdout, key=value lines): size, sha256 of TGZ, compressor.
# Exit codes:
#   0 OK                                   22 the written archive failed its check
#   2 usage or missing input               127 tar, gzip, pigz or sha256sum is missing
#   20 tar or the compressor failed
#   21 cannot write TGZ (disk full, permission)
set -euo pipefail
umask 077

die() {
  local code=$1
  shift
  printf 'pack: %s\n' "$*" >&2
  exit "$code"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need() {
  local v
  for v; do [[ -n ${!v:-} ]] || die 2 "$v is not set (-h for help)"; done
}

main() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
  [[ $# == 2 ]] || die 2 "usage: pack.sh SQL TGZ (-h for help)"
  local sql=$1 tgz=$2 level=${ARCHIVE_COMPRESSION_LEVEL:-6} zip=${ARCHIVE_COMPRESSOR:-auto}
  [[ -f $sql ]] || die 2 "no such file: $sql"
  if [[ $zip == auto ]]; then
    zip=gzip
    command -v pigz >/dev/null && zip=pigz
  fi
  [[ $zip == gzip || $zip == pigz ]] || die 2 "ARCHIVE_COMPRESSOR must be auto, gzip or pigz, not \"$zip\""
  local tool
  for tool in tar "$zip" sha256sum; do
    command -v "$tool" >/dev/null || die 127 "$tool not found; install it"
  done

  # Globals, not locals: the EXIT trap runs after main has returned.
  err=$(mktemp)
  part=$tgz.part
  trap 'rm -f -- "$err" "$part"' EXIT
  # Hash while writing: the archive is not read back just to checksum it.
  local sum
  sum=$(tar -C "$(dirname -- "$sql")" -cf - -- "$(basename -- "$sql")" 2>"$err" |
    "$zip" -c -n "-$level" 2>>"$err" | tee -- "$tgz.part" 2>>"$err" | sha256sum) || {
    grep -qi 'no space' "$err" && die 21 "cannot write the archive: no space left on device"
    grep -qi 'permission denied' "$err" && die 21 "cannot write the archive: permission denied"
    die 20 "packing failed: $(tail -n 1 "$err")"
  }

  local listing
  listing=$("$zip" -dc -- "$tgz.part" | tar -tf - 2>&1) || die 22 "the archive is not a valid gzip tar: $listing"
  [[ $listing == "$(basename -- "$sql")" ]] || die 22 "the archive holds \"$listing\" instead of $(basename -- "$sql")"

  mv -f -- "$tgz.part" "$tgz"
  printf 'size=%s\nsha256=%s\ncompressor=%s\n' "$(stat -c %s -- "$tgz")" "${sum%% *}" "$zip"
}

main "$@"
