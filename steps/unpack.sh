#!/usr/bin/env bash
# unpack.sh: check the zip and extract the one expected member, hashing it on the way out.
#
# Usage: unpack.sh ZIP OUT      extracts member ARCHIVE_EXPECTED_FILE of ZIP to OUT
#        unpack.sh ZIP -        checks and hashes the member, writing it nowhere
# Inputs (environment):
#   ARCHIVE_EXPECTED_FILE  required: the member's exact name at the root of the zip (a member of
#                          that name inside a folder does not count)
#   ARCHIVE_MAX_SIZE       bytes; extraction stops past it (zip bomb guard; default 64 GiB)
#   ARCHIVE_MIN_SIZE       bytes; a smaller member is refused (default 1)
#   ARCHIVE_REUSE          yes: OUT is written only when pack.sh cannot reuse the member's own
#                          deflate data (it is stored, or its name is too long); default no
#   ARCHIVE_BIN            the archive program, which reads the zip (default: archive in PATH)
# Output (stdout, key=value lines): size, sha256 of the member; reuse=yes, or reuse=no and why.
# The zip is read by archive's Go code (archive/zip), not by unzip: the member is inflated with
# its CRC-32, its size and its compressed length all checked (stricter than unzip -t), streamed
# into the sha256, and written to OUT.part, renamed OUT when whole, with the member's own time.
# Nothing but OUT is ever written, and never through a link.
# Exit codes:
#   0 OK                                        24 the member expands past ARCHIVE_MAX_SIZE
#   2 usage or missing input                    25 the member is smaller than ARCHIVE_MIN_SIZE
#   20 not a zip (e.g. a web page)              26 cannot write OUT (disk full, permission)
#   21 the zip is corrupt or truncated          27 the member is encrypted
#   22 the expected member is missing           28 the member's compression method is unknown
#   23 several members carry that exact name    127 the archive program is missing
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

main() {
  help "$@"
  [[ $# == 2 ]] || die 2 "usage: unpack.sh ZIP OUT (-h for help)"
  need ARCHIVE_EXPECTED_FILE
  local bin=${ARCHIVE_BIN:-archive}
  command -v "$bin" >/dev/null || die 127 "$bin not found; set ARCHIVE_BIN to the archive program"
  local opts=(--max-size "${ARCHIVE_MAX_SIZE:-68719476736}" --min-size "${ARCHIVE_MIN_SIZE:-1}")
  [[ ${ARCHIVE_REUSE:-no} == yes ]] && opts+=(--reuse)
  exec "$bin" unzip-member "${opts[@]}" -- "$1" "$ARCHIVE_EXPECTED_FILE" "$2"
}

main "$@"
