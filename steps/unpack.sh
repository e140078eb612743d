#!/usr/bin/env bash
# unpack.sh: check the zip and extract the one expected member, hashing it on the way out.
#
# Usage: unpack.sh ZIP OUT      extracts member ARCHIVE_EXPECTED_FILE of ZIP to OUT
# Inputs (environment):
#   ARCHIVE_EXPECTED_FILE  required: the member's exact name at the root of the zip (a member of
#                          that name inside a folder does not count)
#   ARCHIVE_MAX_SIZE       bytes; extraction stops past it (zip bomb guard; default 64 GiB)
#   ARCHIVE_MIN_SIZE       bytes; a smaller member is refused (default 1)
# Output (stdout, key=value lines): size, sha256 of the extracted member.
# Nothing but OUT is ever written: the member is streamed (unzip -p), never unpacked by its name.
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
  trap 'rm -f -- "$err" "$sum"' EXIT
  # Every status is read from PIPESTATUS: without +e, sha256sum failing to write its line on a
  # full disk would end the script with code 1 before the cause is told.
  set +e +o pipefail
  unzip -p -- "$zip" "$(literal "$want")" 2>"$err" | head -c $((max + 1)) | tee -- "$out.part" | sha256sum >"$sum"
  local st=("${PIPESTATUS[@]}")
  set -e -o pipefail
  local size
  size=$(stat -c %s -- "$out.part" 2>/dev/null || echo 0)
  if ((size > max)); then
    rm -f -- "$out.part"
    die 24 "the member expands past max_size ($max bytes); extraction stopped"
  fi
  if [[ ${st[2]} != 0 || ${st[3]} != 0 ]]; then
    rm -f -- "$out.part"
    die 26 "cannot write the extracted file (disk full or permission denied)"
  fi
  if [[ ${st[0]} != 0 ]]; then
    rm -f -- "$out.part"
    die 21 "the zip is corrupt or truncated (unzip code ${st[0]}: $(grep -v '^$' "$err" | tail -n 1))"
  fi
  if ((size < min)); then
    rm -f -- "$out.part"
    die 25 "the member is $size bytes, below min_size ($min bytes): the dump looks empty or truncated"
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
