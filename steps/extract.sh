#!/usr/bin/env bash
# extract.sh: prove an archive is the one uploaded, then take the dump out of it.
#
# Usage: extract.sh TGZ SHA256 DIR   checks TGZ's sha256, then extracts its one file into DIR
# Environment:
#   ARCHIVE_EXPECTED_FILE  the dump's file name ([source] expected_file): the only member taken,
#                          and only as a regular file (never a link, a device or a folder)
#   ARCHIVE_FORCE          yes: replace a file of that name in DIR (default no: refused)
#   ARCHIVE_IDENTITY_FILE  TGZ is encrypted (NAME.tgz.age): the age identity that decrypts it,
#                          read by age from that file, never on a command line
#   ARCHIVE_DUMP_SHA256    the dump's sha256 recorded at upload (optional): the extracted dump
#                          must have it
# Output (stdout, key=value lines): path, size, sha256 (of the extracted dump).
# The dump is written in a private folder inside DIR, then linked to its name, which never
# follows or replaces an existing entry (a link planted there included) unless ARCHIVE_FORCE=yes.
# Exit codes:
#   0 OK                                   22 DIR already holds a file of that name
#   2 usage or missing input               23 cannot write in DIR (disk full, permission)
#   20 the archive's sha256 is not SHA256  127 tar, gzip or sha256sum is missing
#   21 not a valid .tgz holding exactly the dump, as one regular file
#   24 cannot decrypt: no identity matches the archive's recipients (age's words on stderr)
#   25 the extracted dump's sha256 is not ARCHIVE_DUMP_SHA256
#   1 any other failure (the cause on stderr)
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

main() {
  help "$@"
  [[ $# == 3 ]] || die 2 "usage: extract.sh TGZ SHA256 DIR (-h for help)"
  need ARCHIVE_EXPECTED_FILE
  local tgz=$1 want=$2 dir=$3 file=$ARCHIVE_EXPECTED_FILE
  [[ $file != */* && $file != . && $file != .. && $file != -* ]] || die 2 "ARCHIVE_EXPECTED_FILE must be a plain file name"
  tools "tar gzip coreutils" tar gzip sha256sum

  local got
  got=$(sha256sum -- "$tgz" | cut -d' ' -f1)
  [[ $got == "$want" ]] || die 20 "$tgz has sha256 $got, but $want was recorded at upload: the archive was altered or damaged"
  if [[ -n ${ARCHIVE_IDENTITY_FILE:-} ]]; then
    tools age age
    # Beside TGZ, in the caller's private work folder; never in DIR.
    if ! age -d -i "$ARCHIVE_IDENTITY_FILE" -o "$tgz.plain" -- "$tgz" 2>"$tgz.err"; then
      grep -v -e '^$' -e 'report unexpected' "$tgz.err" | tail -n 2 >&2 || true
      rm -f -- "$tgz.plain"
      die 24 "cannot decrypt $tgz with $ARCHIVE_IDENTITY_FILE"
    fi
    tgz=$tgz.plain
  fi

  # One member, the dump, a regular file: "-rw------- user/group size day time NAME".
  local members perm name
  members=$(tar -tvzf "$tgz" 2>/dev/null) || die 21 "$tgz is not a valid gzip tar"
  read -r perm _ _ _ _ name <<<"$members"
  [[ $members != *$'\n'* && $perm == -* && $name == "$file" ]] ||
    die 21 "$tgz should hold $file alone, as a regular file; it holds: $(head -c 200 <<<"$members" | paste -sd' ')"
  [[ ${ARCHIVE_FORCE:-no} == yes || ! ( -e $dir/$file || -L $dir/$file ) ]] ||
    die 22 "$dir/$file already exists; move it away, choose another --to, or add --force"

  # Globals, not locals: the EXIT trap runs after main has returned.
  part=$(mktemp -d "$dir/.extract.XXXXXX") || die 23 "cannot write in $dir"
  trap 'rm -rf -- "$part"' EXIT
  tar -xzf "$tgz" -C "$part" --no-same-owner --no-same-permissions -- "$file" 2>"$part/.err" ||
    die 23 "cannot extract into $dir: $(tail -n 1 "$part/.err")"
  [[ -f $part/$file && ! -L $part/$file ]] || die 21 "$tgz did not give $file as a regular file"
  local sum
  sum=$(sha256sum -- "$part/$file" | cut -d' ' -f1)
  [[ -z ${ARCHIVE_DUMP_SHA256:-} || $sum == "$ARCHIVE_DUMP_SHA256" ]] ||
    die 25 "the dump has sha256 $sum, but $ARCHIVE_DUMP_SHA256 was recorded at upload"
  # ln makes the name or fails: it never writes through, nor replaces, what is there.
  if [[ ${ARCHIVE_FORCE:-no} == yes ]]; then
    mv -f -T -- "$part/$file" "$dir/$file" 2>"$part/.err" || die 23 "cannot write $dir/$file: $(tail -n 1 "$part/.err")"
  else
    ln -- "$part/$file" "$dir/$file" 2>"$part/.err" || die 22 "$dir/$file already exists; move it away, choose another --to, or add --force"
  fi
  printf 'path=%s\nsize=%s\nsha256=%s\n' "$dir/$file" "$(stat -c %s -- "$dir/$file")" "$sum"
}

main "$@"
