#!/usr/bin/env bash
# pack.sh: pack the SQL dump into a .tgz and prove the result is a valid gzip tar.
#
# Usage: pack.sh SQL TGZ     writes TGZ (as TGZ.part until checked) holding SQL under its own name
# Inputs (environment):
#   ARCHIVE_COMPRESSOR         reuse | pigz | gzip (required). reuse compresses nothing: the .tgz
#                              is made of the zip member's own deflate data, framed as gzip
#                              members around a tar header and the tar's end (archive
#                              pack-member, Go's archive/zip); SQL need not exist. pigz or gzip:
#                              tar, then the compressor (-n), at ARCHIVE_COMPRESSION_LEVEL.
#   ARCHIVE_COMPRESSION_LEVEL  pigz, gzip: 1 (fast) to 9 (small) (default 6)
#   ARCHIVE_ZIP                reuse: the downloaded zip (required)
#   ARCHIVE_MEMBER             reuse: the member's name in the zip (default SQL's base name)
#   ARCHIVE_SHA256             pigz, gzip: the dump's sha256 (optional); the archive is then
#                              decompressed and its file's sha256 compared, a full proof.
#                              Without it, every gzip CRC and the tar listing are checked.
#   ARCHIVE_BIN                reuse: the archive program (default: archive in PATH)
#   ARCHIVE_RECIPIENTS         reuse: a file of age recipients ([archive] encrypt_to); TGZ is then
#                              the archive streamed through age (NAME.tgz.age): no plain copy is
#                              written. Also prints plain_sha256 and encrypted=age.
# Output (stdout, key=value lines): size, sha256 of TGZ, compressor.
# reuse proves the file it wrote by reading back its size and frame; the member's data is what
# unpack.sh inflated and checked against the zip's CRC; the server's copy is checked against the
# sha256.
# Exit codes:
#   0 OK                                   22 the written archive failed its check
#   2 usage or missing input               127 a tool is missing: tar, the compressor,
#   20 tar or the compressor failed, or        sha256sum, or the archive program
#      the zip's data cannot be reused
#   21 cannot write TGZ (disk full, permission)
#   1 any other failure (the cause on stderr)
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# sha256 of stdin: openssl uses the CPU's SHA instructions, about ten times sha256sum's speed.
sha256() {
  if command -v openssl >/dev/null; then openssl dgst -sha256 -r; else sha256sum; fi
}

# compress SQL: tar | compressor | tee $part | sha256, then the proof.
compress() {
  local sql=$1 zip=$2 name sum got listing
  name=$(basename -- "$sql")
  [[ -f $sql ]] || die 2 "no such file: $sql"
  tools "tar $zip coreutils" tar "$zip" sha256sum
  # Hash while writing: the archive is not read back just to checksum it.
  sum=$(tar -C "$(dirname -- "$sql")" -cf - -- "$name" 2>"$err" |
    "$zip" -c -n "-${ARCHIVE_COMPRESSION_LEVEL:-6}" 2>>"$err" | tee -- "$part" 2>>"$err" | sha256) || {
    # The messages file lives on the same disk: a full disk may have kept the tools' words from
    # it, so the disk itself is asked too.
    if grep -qi 'no space' "$err" || [[ $(stat -f -c %a -- "$(dirname -- "$part")") == 0 ]]; then
      die 21 "cannot write the archive in $(dirname -- "$part"): no space left on device"
    fi
    grep -qi 'permission denied' "$err" && die 21 "cannot write the archive in $(dirname -- "$part"): permission denied"
    die 20 "packing failed: $(tail -n 1 "$err")"
  }
  if [[ -n ${ARCHIVE_SHA256:-} ]]; then
    got=$("$zip" -dc -- "$part" 2>"$err" | tar -xOf - -- "$name" 2>>"$err" | sha256) ||
      die 22 "the archive is not a valid gzip tar holding $name: $(tail -n 1 "$err")"
    [[ ${got%% *} == "$ARCHIVE_SHA256" ]] || die 22 "the archive's $name has sha256 ${got%% *}, not $ARCHIVE_SHA256"
  else
    listing=$("$zip" -dc -- "$part" | tar -tf - 2>&1) || die 22 "the archive is not a valid gzip tar: $listing"
    [[ $listing == "$name" ]] || die 22 "the archive holds \"$listing\" instead of $name"
  fi
  printf 'size=%s\nsha256=%s\n' "$(stat -c %s -- "$part")" "${sum%% *}"
}

main() {
  help "$@"
  [[ $# == 2 ]] || die 2 "usage: pack.sh SQL TGZ (-h for help)"
  local sql=$1 tgz=$2 zip=${ARCHIVE_COMPRESSOR:-} facts
  [[ $sql == /* ]] || sql=./$sql # a file named "-" is not standard input
  [[ $zip =~ ^(reuse|pigz|gzip)$ ]] || die 2 "ARCHIVE_COMPRESSOR must be reuse, pigz or gzip, not \"$zip\""
  # Globals, not locals: the EXIT trap runs after main has returned.
  err=$(mktemp) part=$tgz.part
  trap 'rm -f -- "$err" "$part"' EXIT
  rm -f -- "$part"
  if [[ $zip == reuse ]]; then
    [[ -n ${ARCHIVE_ZIP:-} ]] || die 2 "ARCHIVE_ZIP is not set; reuse needs the downloaded zip (-h for help)"
    local bin=${ARCHIVE_BIN:-archive}
    command -v "$bin" >/dev/null || die 127 "$bin not found; set ARCHIVE_BIN to the archive program"
    [[ -z ${ARCHIVE_RECIPIENTS:-} ]] || tools age age
    facts=$("$bin" pack-member "$ARCHIVE_ZIP" "${ARCHIVE_MEMBER:-$(basename -- "$sql")}" "$part")
  else
    facts=$(compress "$sql" "$zip")
  fi
  mv -f -- "$part" "$tgz"
  printf '%s\ncompressor=%s\n' "$facts" "$zip"
}

main "$@"
