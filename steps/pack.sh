#!/usr/bin/env bash
# pack.sh: pack the SQL file into a .tgz and prove the result is a valid gzip tar.
#
# Usage: pack.sh SQL TGZ     writes TGZ (as TGZ.part until checked) holding SQL under its own name
# Inputs (environment):
#   ARCHIVE_COMPRESSOR         auto (pigz when installed, else gzip) | gzip | pigz | reuse
#                              (default auto). reuse compresses nothing: the .tgz is three gzip
#                              members, the tar header, the zip member's own deflate data and the
#                              tar trailer; inflated, it is byte for byte what tar -c writes. A
#                              member that is not deflated (or is encrypted) is compressed as auto.
#   ARCHIVE_COMPRESSION_LEVEL  1 (fast) to 9 (small) (default 6; reuse keeps the zip's level)
#   ARCHIVE_ZIP                reuse: the downloaded zip (required)
#   ARCHIVE_MEMBER             reuse: the member's name in the zip (default SQL's base name)
#   ARCHIVE_SHA256             the SQL's checked sha256 (optional): the archive is then
#                              decompressed and its file's sha256 compared, a full proof.
#                              Without it, reuse reads back the frame only (see framed) and the
#                              other compressors check every gzip CRC and the tar listing.
# Output (stdout, key=value lines): size, sha256 of TGZ, compressor (pigz, gzip or reuse).
# SQL need not exist with reuse; when it does, its size must be the member's.
# Exit codes:
#   0 OK                                   22 the written archive failed its check
#   2 usage or missing input               127 a tool is missing: tar, gzip, pigz, sha256sum,
#                                              and for reuse unzip, od, dd
#   20 tar or the compressor failed, or the zip cannot be read
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

# sha256 of stdin: openssl uses the CPU's SHA instructions, about ten times sha256sum's speed.
sha256() {
  if command -v openssl >/dev/null; then openssl dgst -sha256 -r; else sha256sum; fi
}

# le32 N: N as four little-endian bytes, in printf %b escapes.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# unzip takes member names as wildcard patterns: make every special character literal.
literal() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      '*' | '?' | '[' | '-') out+="[$c]" ;;
      *) out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

# member ZIP NAME: sets off (where the member's deflate data starts), csize, usize and crc, or
# returns 1 with the reason it cannot be reused in $why. zipinfo reads the central directory
# (zip64 included); only the local header's two name lengths are read here.
member() {
  local info
  info=$(unzip -Z -v -- "$1" "$(literal "$2")" 2>&1) || die 20 "cannot read the zip $1: $(tail -n 1 <<<"$info")"
  [[ $(grep -c '^Central directory entry #' <<<"$info") == 1 ]] || die 20 "the zip $1 holds no single member \"$2\""
  local method enc lhoff h lcrc
  method=$(zipfield "$info" 'compression method') enc=$(zipfield "$info" 'file security status')
  lhoff=$(zipfield "$info" 'offset of local header from start of archive') crc=$(zipfield "$info" '32-bit CRC value (hex)')
  csize=$(zipfield "$info" 'compressed size') usize=$(zipfield "$info" 'uncompressed size')
  [[ $method == deflated ]] || { why="the member is not deflated: compression method $method"; return 1; }
  [[ $enc == not ]] || { why="the member is encrypted"; return 1; }
  read -ra h <<<"$(od -An -tu1 -v -j "$lhoff" -N 30 -- "$1" | tr -s ' \n' '  ')"
  [[ ${#h[@]} == 30 && ${h[*]:0:4} == "80 75 3 4" ]] || die 20 "the zip $1 has no member header where its directory says"
  # Without a data descriptor (flag bit 3) the local header repeats the CRC: both must agree.
  lcrc=$(printf '%02x%02x%02x%02x' "${h[17]}" "${h[16]}" "${h[15]}" "${h[14]}")
  ((h[6] & 8)) || [[ $lcrc == "$crc" ]] || die 20 "the zip $1 is inconsistent: CRC $crc in its directory, $lcrc in the member"
  off=$((lhoff + 30 + h[26] + 256 * h[27] + h[28] + 256 * h[29]))
}

# zipfield INFO LABEL: the first word after "LABEL:" in zipinfo -v's output.
zipfield() { sed -n "s/^  $2: *\([^ ]*\).*/\1/p" <<<"$1"; }

# header SQL: tar's own 512-byte header for SQL, as tar -c writes it, into $tmp/header. When SQL
# is not on disk, a sparse stand-in takes its place, as unpack.sh would have written it: the
# member's size, mode 600, the member's own time (1980-01-01 when it has none).
header() {
  local name dir=$tmp/h stamp
  name=$(basename -- "$1")
  mkdir -- "$dir"
  if [[ -f $1 ]]; then
    ln -s -- "$(realpath -- "$1")" "$dir/$name"
  else
    truncate -s "$usize" -- "$dir/$name"
    stamp=$(unzip -Z -T -- "$ARCHIVE_ZIP" "$(literal "${ARCHIVE_MEMBER:-$name}")" 2>/dev/null |
      grep -o ' [0-9]\{8\}\.[0-9]\{6\} ' | head -n 1 || true)
    stamp=${stamp// /}
    touch -m -t "${stamp:0:8}${stamp:9:4}.${stamp:13:2}" -- "$dir/$name" 2>/dev/null ||
      touch -m -t 198001010000.00 -- "$dir/$name"
  fi
  set +o pipefail # head stops tar after the header: tar reads 10 KiB of the file at most
  tar -C "$dir" -chf - -- "$name" 2>/dev/null | head -c 512 >"$tmp/header"
  set -o pipefail
  [[ $(stat -c %s -- "$tmp/header") == 512 ]] || die 20 "tar could not write a header for $1"
}

# reuse ZIP: the .tgz on stdout, made of three gzip members: the tar header, the zip member's
# deflate data with its CRC and size, and tar's end (padding, two zero blocks, 10240-byte record).
reuse() {
  local end=$((512 + (usize + 511) / 512 * 512 + 1024))
  gzip -c -n <"$tmp/header" >"$tmp/head.gz"
  printf '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03' >>"$tmp/head.gz"
  printf '%b' "$(le32 $((16#$crc)))$(le32 $((usize & 0xffffffff)))" >"$tmp/tail.gz"
  head -c $((end - 512 - usize + (10240 - end % 10240) % 10240)) /dev/zero | gzip -c -n >>"$tmp/tail.gz"
  cat -- "$tmp/head.gz"
  dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$csize" status=none
  cat -- "$tmp/tail.gz"
}

# framed: the archive written is the frame made around the zip's data, byte for byte: its size,
# and its first and last bytes read back. (The data itself is the bytes the zip-content step
# inflated and checked against the zip's CRC; the server's copy is checked against the sha256.)
framed() {
  local hs ts
  hs=$(stat -c %s -- "$tmp/head.gz") ts=$(stat -c %s -- "$tmp/tail.gz")
  [[ $(stat -c %s -- "$part") == $((hs + csize + ts)) ]] &&
    cmp -s -n "$hs" -- "$part" "$tmp/head.gz" &&
    tail -c "$ts" -- "$part" | cmp -s -- - "$tmp/tail.gz"
}

main() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
  [[ $# == 2 ]] || die 2 "usage: pack.sh SQL TGZ (-h for help)"
  local sql=$1 tgz=$2 level=${ARCHIVE_COMPRESSION_LEVEL:-6} zip=${ARCHIVE_COMPRESSOR:-auto}
  [[ $sql == /* ]] || sql=./$sql # a file named "-" is not standard input
  [[ $zip == reuse || -f $sql ]] || die 2 "no such file: $sql"
  [[ $zip =~ ^(auto|gzip|pigz|reuse)$ ]] || die 2 "ARCHIVE_COMPRESSOR must be auto, gzip, pigz or reuse, not \"$zip\""
  local tool name
  name=$(basename -- "$sql")
  # Globals, not locals: the EXIT trap runs after main has returned.
  err=$(mktemp) tmp=$(mktemp -d) part=$tgz.part
  trap 'rm -rf -- "$err" "$tmp" "$part"' EXIT
  if [[ $zip == reuse ]]; then
    [[ -n ${ARCHIVE_ZIP:-} ]] || die 2 "ARCHIVE_ZIP is not set; reuse needs the downloaded zip (-h for help)"
    for tool in unzip od dd tar gzip; do command -v "$tool" >/dev/null || die 127 "$tool not found; install it"; done
    # A name of 100 bytes or more takes tar more than one header block.
    [[ ${#name} -lt 100 ]] || { why="its name is 100 characters or more" && zip=auto; }
    [[ $zip == auto ]] || member "$ARCHIVE_ZIP" "${ARCHIVE_MEMBER:-$name}" || zip=auto
    if [[ $zip == auto ]]; then
      printf 'pack: cannot reuse the zip'"'"'s data (%s); compressing instead\n' "$why" >&2
    else
      [[ ! -f $sql || $(stat -c %s -- "$sql") == "$usize" ]] ||
        die 20 "$sql is $(stat -c %s -- "$sql") bytes but the zip's member is $usize: not the same file"
      header "$sql"
    fi
  fi
  if [[ $zip == auto ]]; then
    if [[ ! -f $sql && -n ${ARCHIVE_ZIP:-} ]]; then
      # reuse was asked without the dump on disk, and cannot be: extract it to compress it.
      unzip -p -- "$ARCHIVE_ZIP" "$(literal "${ARCHIVE_MEMBER:-$name}")" >"$sql" 2>>"$err" ||
        die 21 "cannot extract the dump to compress it: $(tail -n 1 "$err")"
      # The member's own time, as unpack.sh gives it: the same dump packs into the same archive.
      local stamp
      stamp=$(unzip -Z -T -- "$ARCHIVE_ZIP" "$(literal "${ARCHIVE_MEMBER:-$name}")" 2>/dev/null | grep -o ' [0-9]\{8\}\.[0-9]\{6\} ' | head -n 1 || true)
      stamp=${stamp// /}
      touch -m -t "${stamp:0:8}${stamp:9:4}.${stamp:13:2}" -- "$sql" 2>/dev/null || touch -m -t 198001010000.00 -- "$sql"
    fi
    [[ -f $sql ]] || die 2 "no such file: $sql"
    zip=gzip
    command -v pigz >/dev/null && zip=pigz
  fi
  for tool in tar "$zip" sha256sum; do
    [[ $tool == reuse ]] || command -v "$tool" >/dev/null || die 127 "$tool not found; install it"
  done

  # Hash while writing: the archive is not read back just to checksum it.
  local sum
  if [[ $zip == reuse ]]; then
    sum=$(reuse "$ARCHIVE_ZIP" 2>>"$err" | tee -- "$part" 2>>"$err" | sha256)
  else
    sum=$(tar -C "$(dirname -- "$sql")" -cf - -- "$name" 2>"$err" |
      "$zip" -c -n "-$level" 2>>"$err" | tee -- "$part" 2>>"$err" | sha256)
  fi || {
    grep -qi 'no space' "$err" && die 21 "cannot write the archive: no space left on device"
    grep -qi 'permission denied' "$err" && die 21 "cannot write the archive: permission denied"
    die 20 "packing failed: $(tail -n 1 "$err")"
  }

  # Proof: every gzip member's CRC and length, tar's structure, and with ARCHIVE_SHA256 the file.
  # With reuse and no ARCHIVE_SHA256, the frame only: the dump is not inflated a second time.
  local unzip=gzip listing got
  command -v pigz >/dev/null && unzip=pigz
  if [[ $zip == reuse && -z ${ARCHIVE_SHA256:-} ]]; then
    framed || die 22 "the archive written differs from the frame made around the zip's data"
  elif [[ -n ${ARCHIVE_SHA256:-} ]]; then
    got=$("$unzip" -dc -- "$part" 2>"$err" | tar -xOf - -- "$name" 2>>"$err" | sha256) ||
      die 22 "the archive is not a valid gzip tar holding $name: $(tail -n 1 "$err")"
    [[ ${got%% *} == "$ARCHIVE_SHA256" ]] || die 22 "the archive's $name has sha256 ${got%% *}, not $ARCHIVE_SHA256"
  else
    listing=$("$unzip" -dc -- "$part" | tar -tf - 2>&1) || die 22 "the archive is not a valid gzip tar: $listing"
    [[ $listing == "$name" ]] || die 22 "the archive holds \"$listing\" instead of $name"
  fi

  mv -f -- "$part" "$tgz"
  printf 'size=%s\nsha256=%s\ncompressor=%s\n' "$(stat -c %s -- "$tgz")" "${sum%% *}" "$zip"
}

main "$@"
