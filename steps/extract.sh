#!/usr/bin/env bash
# extract.sh: prove an archive is the one uploaded, then take the dump out of it.
#
# Usage: extract.sh TGZ SHA256 DIR   checks TGZ's sha256, then extracts its one file into DIR
# Output (stdout, key=value lines): path, size, sha256 (of the extracted dump).
# An existing file in DIR is never overwritten; the dump is written as a temporary name first.
# Exit codes:
#   0 OK                                   22 DIR already holds a file of that name
#   2 usage or missing input               23 cannot write in DIR (disk full, permission)
#   20 the archive's sha256 is not SHA256  127 tar, gzip or sha256sum is missing
#   21 not a valid .tgz holding one plain file
#   1 any other failure (the cause on stderr)
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

main() {
  help "$@"
  [[ $# == 3 ]] || die 2 "usage: extract.sh TGZ SHA256 DIR (-h for help)"
  local tgz=$1 want=$2 dir=$3
  tools "tar gzip coreutils" tar gzip sha256sum

  local got
  got=$(sha256sum -- "$tgz" | cut -d' ' -f1)
  [[ $got == "$want" ]] || die 20 "$tgz has sha256 $got, but $want was recorded at upload: the archive was altered or damaged"

  local members
  members=$(tar -tzf "$tgz" 2>/dev/null) || die 21 "$tgz is not a valid gzip tar"
  [[ $members != *$'\n'* && -n $members && $members != */* && $members != -* && $members != .* ]] ||
    die 21 "$tgz should hold one plain file, it holds: $(head -c 200 <<<"$members" | paste -sd' ')"
  [[ -e $dir/$members ]] && die 22 "$dir/$members already exists; move it away or choose another --to"

  # Globals, not locals: the EXIT trap runs after main has returned.
  part=$(mktemp -d "$dir/.extract.XXXXXX") || die 23 "cannot write in $dir"
  trap 'rm -rf -- "$part"' EXIT
  tar -xzf "$tgz" -C "$part" -- "$members" 2>"$part/.err" ||
    die 23 "cannot extract into $dir: $(tail -n 1 "$part/.err")"
  local sum
  sum=$(sha256sum -- "$part/$members" | cut -d' ' -f1)
  mv -- "$part/$members" "$dir/$members"
  printf 'path=%s\nsize=%s\nsha256=%s\n' "$dir/$members" "$(stat -c %s -- "$dir/$members")" "$sum"
}

main "$@"
