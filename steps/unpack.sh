#!/usr/bin/env bash
# unpack.sh: check the zip and extract the one expected member, hashing it on the way out.
#
# Usage: unpack.sh ZIP OUT      extracts member ARCHIVE_EXPECTED_FILE of ZIP to OUT
#        unpack.sh ZIP -        checks and hashes the member, writing it nowhere (compressor reuse)
# Inputs (environment):
#   ARCHIVE_EXPECTED_FILE  required: the member's exact name at the root of the zip (a member of
#                          that name inside a folder does not count)
#   ARCHIVE_MAX_SIZE       bytes; extraction stops past it (zip bomb guard; default 64 GiB)
#   ARCHIVE_MIN_SIZE       bytes; a smaller member is refused (default 1)
# Output (stdout, key=value lines): size, sha256 of the extracted member.
# Nothing but OUT is ever written: the member is streamed, never unpacked by its name. A deflated
# member is inflated by pigz when installed (about twice unzip's speed), as a gzip stream made of
# the member's own data, CRC-32 and size, so that both are checked as unzip checks them; the
# sha256 is openssl's when installed (the CPU's SHA instructions: ten times sha256sum's speed).
# Exit codes:
#   0 OK                                        23 several members carry that exact name
#   2 usage or missing input                    24 the member expands past ARCHIVE_MAX_SIZE
#   20 not a zip (e.g. a web page)              25 the member is smaller than ARCHIVE_MIN_SIZE
#   21 the zip is corrupt or truncated          26 cannot write OUT (disk full, permission)
#   22 the expected member is missing           127 unzip or sha256sum is missing
set -euo pipefail
umask 077

die() {
  local code=$1
  shift
  printf 'unpack: %s\n' "$*" >&2
  exit "$code"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need() {
  local v
  for v; do [[ -n ${!v:-} ]] || die 2 "$v is not set (-h for help)"; done
}

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

# sha256 of stdin.
sha256() {
  if command -v openssl >/dev/null; then openssl dgst -sha256 -r; else sha256sum; fi
}

# zipfield INFO LABEL: the first word after "LABEL:" in zipinfo -v's output.
zipfield() { sed -n "s/^  $2: *\([^ ]*\).*/\1/p" <<<"$1"; }

# le32 N: N as four little-endian bytes, in printf %b escapes.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# inflate ZIP NAME: the member's bytes on stdout.
inflate() {
  local info h off crc usize
  info=$(unzip -Z -v -- "$1" "$(literal "$2")" 2>/dev/null) || true
  if ! command -v pigz >/dev/null || [[ $(zipfield "$info" 'compression method') != deflated ||
    $(zipfield "$info" 'file security status') != not ]]; then
    unzip -p -- "$1" "$(literal "$2")"
    return
  fi
  off=$(zipfield "$info" 'offset of local header from start of archive')
  read -ra h <<<"$(od -An -tu1 -v -j "$off" -N 30 -- "$1" | tr -s ' \n' '  ')"
  [[ ${#h[@]} == 30 && ${h[*]:0:4} == "80 75 3 4" ]] || { echo "no member header at offset $off" >&2; return 1; }
  crc=$(zipfield "$info" '32-bit CRC value (hex)') usize=$(zipfield "$info" 'uncompressed size')
  {
    printf '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03'
    dd if="$1" bs=1M iflag=skip_bytes,count_bytes status=none count="$(zipfield "$info" 'compressed size')" \
      skip=$((off + 30 + h[26] + 256 * h[27] + h[28] + 256 * h[29]))
    printf '%b' "$(le32 $((16#$crc)))$(le32 $((usize & 0xffffffff)))"
  } | pigz -dc
}

main() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
  [[ $# == 2 ]] || die 2 "usage: unpack.sh ZIP OUT (-h for help)"
  local zip=$1 out=$2
  need ARCHIVE_EXPECTED_FILE
  local max=${ARCHIVE_MAX_SIZE:-68719476736} min=${ARCHIVE_MIN_SIZE:-1} want=$ARCHIVE_EXPECTED_FILE
  command -v unzip >/dev/null || die 127 "unzip not found; install the unzip package"
  command -v sha256sum >/dev/null || die 127 "sha256sum not found; install coreutils"

  local magic
  magic=$(head -c 4 -- "$zip" | od -An -tx1 | tr -d ' \n')
  if [[ $magic != 504b0304 && $magic != 504b0506 ]]; then
    local start
    start=$(head -c 60 -- "$zip" | tr -c '[:print:]' ' ')
    [[ $start == *[Hh][Tt][Mm][Ll]* ]] && die 20 "not a zip: the server sent a web page (it starts with \"$start\")"
    die 20 "not a zip: the file starts with \"$start\""
  fi

  local names rc=0
  names=$(unzip -Z1 -- "$zip" 2>&1) || rc=$?
  [[ $rc == 0 ]] || die 21 "the zip is corrupt or truncated: its central directory is missing or damaged (unzip code $rc)"
  local count
  count=$(grep -cxF -- "$want" <<<"$names" || true)
  if [[ $count == 0 ]]; then
    local near
    near=$(grep -F -- "$want" <<<"$names" | head -n 3 | paste -sd, || true)
    die 22 "the zip holds no member named \"$want\" at its root${near:+ (found: $near)}"
  fi
  [[ $count == 1 ]] || die 23 "the zip holds $count members named \"$want\"; which one is the dump is ambiguous"

  # Hash while extracting: the dump is read once. head bounds what a zip bomb can write.
  # Globals, not locals: the EXIT trap runs after main has returned.
  err=$(mktemp)
  sum=$(mktemp)
  trap 'rm -f -- "$err" "$sum" "$sum.size"' EXIT
  # Every status is read from PIPESTATUS: without +e, sha256sum failing to write its line on a
  # full disk would end the script with code 1 before the cause is told.
  set +e +o pipefail
  local size st
  if [[ $out == - ]]; then
    # dd bounds the stream as head -c does, and counts it (its last line on stderr).
    inflate "$zip" "$want" 2>"$err" | dd bs=1M iflag=count_bytes,fullblock count=$((max + 1)) 2>"$sum.size" |
      sha256 >"$sum"
    st=("${PIPESTATUS[0]}" "${PIPESTATUS[1]}" 0 "${PIPESTATUS[2]}")
    size=$(sed -n 's/ bytes .*//p' "$sum.size")
    size=${size:-0}
  else
    inflate "$zip" "$want" 2>"$err" | head -c $((max + 1)) | tee -- "$out.part" | sha256 >"$sum"
    st=("${PIPESTATUS[@]}")
    size=$(stat -c %s -- "$out.part" 2>/dev/null || echo 0)
  fi
  set -e -o pipefail
  if ((size > max)); then
    [[ $out == - ]] || rm -f -- "$out.part"
    die 24 "the member expands past max_size ($max bytes); extraction stopped"
  fi
  if [[ ${st[2]} != 0 || ${st[3]} != 0 ]]; then
    [[ $out == - ]] || rm -f -- "$out.part"
    die 26 "cannot write the extracted file (disk full or permission denied)"
  fi
  if [[ ${st[0]} != 0 ]]; then
    [[ $out == - ]] || rm -f -- "$out.part"
    die 21 "the zip is corrupt or truncated (code ${st[0]}: $(grep -v '^$' "$err" | tail -n 1))"
  fi
  if ((size < min)); then
    [[ $out == - ]] || rm -f -- "$out.part"
    die 25 "the member is $size bytes, below min_size ($min bytes): the dump looks empty or truncated"
  fi
  if [[ $out == - ]]; then
    printf 'size=%s\nsha256=%s\n' "$size" "$(cut -d' ' -f1 "$sum")"
    return
  fi
  # The member's own time (zipinfo -T: yyyymmdd.hhmmss), so that the same dump packs into the
  # same archive, byte for byte, and a rerun finds it already on the server.
  local stamp
  stamp=$(unzip -Z -T -- "$zip" "$(literal "$want")" 2>/dev/null | grep -o ' [0-9]\{8\}\.[0-9]\{6\} ' | head -n 1 || true)
  stamp=${stamp// /}
  # A member without a valid time (zero, as some writers leave it) gets the zip epoch, 1980-01-01.
  touch -m -t "${stamp:0:8}${stamp:9:4}.${stamp:13:2}" -- "$out.part" 2>/dev/null ||
    touch -m -t 198001010000.00 -- "$out.part"
  mv -f -- "$out.part" "$out"
  printf 'size=%s\nsha256=%s\n' "$size" "$(cut -d' ' -f1 "$sum")"
}

main "$@"
