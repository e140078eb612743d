#!/usr/bin/env bash
# ping.sh: tell a monitoring service (healthchecks.io style) that a run started, ended or failed.
#
# Usage: ping.sh start|success|fail
# Inputs (environment):
#   ARCHIVE_PING_URL   required; start pings URL/start, fail pings URL/fail, success pings URL.
#                      Passed to curl on its standard input, so its token never shows in ps.
#   ARCHIVE_CA_FILE    PEM bundle to trust instead of the system's (optional)
#   ARCHIVE_TIMEOUT    seconds (default 10)
# Exit codes:
#   0 the service answered 2xx            2 usage or missing input
#   1 the ping failed (cause on stderr)   127 curl is missing
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

main() {
  help "$@"
  local event=${1:-}
  [[ $event == start || $event == success || $event == fail ]] || die 2 "usage: ping.sh start|success|fail"
  [[ -n ${ARCHIVE_PING_URL:-} ]] || die 2 "ARCHIVE_PING_URL is not set"
  tools curl curl
  local url=${ARCHIVE_PING_URL%/}
  [[ $event == success ]] || url+=/$event
  local opts=(-q --silent --show-error --fail --max-time "${ARCHIVE_TIMEOUT:-10}" --retry 2 --output /dev/null)
  [[ -n ${ARCHIVE_CA_FILE:-} ]] && opts+=(--cacert "$ARCHIVE_CA_FILE")
  local rc=0
  printf 'url = "%s"\n' "${url//\"/\\\"}" | curl "${opts[@]}" --config - || rc=$?
  [[ $rc == 0 ]] || die 1 "the monitoring service did not take the $event ping (curl code $rc)"
}

main "$@"
