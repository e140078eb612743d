#!/usr/bin/env bash
# encrypt.sh: encrypt an archive with age, to public keys only, and hash what will be uploaded.
#
# Usage: encrypt.sh IN OUT   writes OUT (as OUT.part until whole) encrypted to ARCHIVE_RECIPIENTS
# Inputs (environment):
#   ARCHIVE_RECIPIENTS  a file of age recipients, one per line ([archive] encrypt_to): age public
#                       keys (age1...) or SSH public keys; # comments allowed. Only public keys:
#                       nothing on the backup host can decrypt.
# Output (stdout, key=value lines): size, sha256 (of OUT), recipients (how many).
# IN is left as it is; the caller removes it.
# Exit codes:
#   0 OK                                   21 cannot write OUT (disk full, permission)
#   2 usage or missing input               127 age or sha256sum is missing
#   20 the recipients file is refused by age (its words on stderr)
#   1 any other failure (the cause on stderr)
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

main() {
  help "$@"
  [[ $# == 2 && -f $1 ]] || die 2 "usage: encrypt.sh IN OUT (IN must be a file; -h for help)"
  need ARCHIVE_RECIPIENTS
  tools "age coreutils" age sha256sum
  local in=$1 n
  # Globals, not locals: the EXIT trap runs after main has returned.
  out=$2 part=$2.part err=$(mktemp)
  trap 'rm -f -- "$err" "$part"' EXIT
  n=$(grep -cEv '^[[:space:]]*(#|$)' -- "$ARCHIVE_RECIPIENTS" || true)
  [[ $n -gt 0 ]] || die 20 "$ARCHIVE_RECIPIENTS holds no recipient (one age or SSH public key per line)"
  rm -f -- "$part"
  if ! age -R "$ARCHIVE_RECIPIENTS" -o "$part" -- "$in" 2>"$err"; then
    grep -v -e '^$' -e 'report unexpected' "$err" | tail -n 2 >&2 || true
    if grep -qi 'no space' "$err" || [[ $(stat -f -c %a -- "$(dirname -- "$part")") == 0 ]]; then
      die 21 "cannot write $part: no space left on device"
    fi
    grep -qi 'recipient' "$err" && die 20 "age refused the recipients in $ARCHIVE_RECIPIENTS"
    die 1 "age could not encrypt $in"
  fi
  mv -f -- "$part" "$out"
  printf 'size=%s\nsha256=%s\nrecipients=%s\n' "$(stat -c %s -- "$out")" "$(sha256sum <"$out" | cut -d' ' -f1)" "$n"
}

main "$@"
