#!/usr/bin/env bash
# fetch.sh: the source side, over HTTPS with curl.
#
# Usage: fetch.sh probe          does the URL answer? A GET of its first byte (HEAD is never used:
#                                servers and presigned links refuse or mishandle it); retried
#                                like get
#        fetch.sh get OUT.zip    download to OUT.zip (written as OUT.zip.part, renamed when whole)
# Inputs (environment):
#   ARCHIVE_URL          required, https:// only (redirects are followed to https:// only); it
#                        reaches curl on its standard input, never on its command line
#   ARCHIVE_CA_FILE      PEM bundle to trust for this server instead of the system's (optional)
#   ARCHIVE_TIMEOUT      seconds for one attempt (default 600)
#   ARCHIVE_RETRIES      further attempts after a transient failure (default 2)
#   ARCHIVE_RETRY_DELAY  seconds between attempts, doubled each time (default 10)
#   ARCHIVE_IF_NONE_MATCH  get: the strong ETag of the last archived zip (optional). When the
#                        server answers 304 Not Modified, nothing is downloaded, OUT.zip is not
#                        written, and get prints status=304 and exits 0. (No If-Modified-Since:
#                        a file time proves nothing; a new dump may carry an older one.)
# Output (stdout, key=value lines): status, size, last_modified, etag, date (the answer's own, to
#   tell how old last_modified is), final_url and redirects (where the redirects led); with get
#   also attempts and retried (the cause of the last failed attempt, when there was one).
# Exit codes:
#   0 OK                                       12 TLS certificate not trusted (unknown CA, wrong name)
#   2 usage or missing input                   13 TLS handshake failed
#   3 the URL is not https://                  14 the server answered an HTTP error (see status=)
#   10 the host name does not resolve          15 timed out
#   11 connection refused or host unreachable  16 the download was cut short
#   17 cannot write OUT (disk full, permission) 127 curl is missing
#   18 a redirect to an address that is not https:// (http://, file://...) was refused
#   1 any other curl failure
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# cause CURL_RC HTTP_STATUS: prints "CODE TRANSIENT TEXT" for the step's own exit code.
cause() {
  case $1 in
    0) if [[ $2 == 2?? ]]; then echo 0 no OK
       elif [[ $2 == 304 && -n ${ARCHIVE_IF_NONE_MATCH:-} ]]; then echo 0 no "not modified"
       elif [[ $2 == 408 || $2 == 429 || $2 == 5?? ]]; then echo 14 yes "HTTP $2"
       else echo 14 no "HTTP $2"; fi ;;
    6) echo 10 yes "cannot resolve the host name" ;;
    7) echo 11 yes "connection refused or host unreachable" ;;
    60 | 51) echo 12 no "the server's TLS certificate is not trusted (unknown CA or wrong host name)" ;;
    35) echo 13 no "the TLS handshake failed" ;;
    28) echo 15 yes "timed out after ${ARCHIVE_TIMEOUT:-600}s" ;;
    18 | 52 | 56 | 92 | 16) echo 16 yes "the download was cut short (curl code $1)" ;;
    23) echo 17 no "cannot write the downloaded file (disk full or permission denied)" ;;
    1) if grep -q 'Protocol ".*" not supported' "$err"; then
         echo 18 no "the source redirected to an address that is not https:// (refused)"
       else echo 1 no "curl failed: $(grep -m 1 '^curl: (' "$err" || echo "code 1")"; fi ;;
    *) echo 1 no "curl failed: $(grep -m 1 '^curl: (' "$err" || echo "code $1")" ;;
  esac
}

main() {
  local verb=${1:-}
  help "$@"
  [[ $verb == probe || ($verb == get && -n ${2:-}) ]] || die 2 "usage: fetch.sh probe | get OUT.zip (-h for help)"
  need ARCHIVE_URL
  [[ $ARCHIVE_URL == https://* ]] || die 3 "the URL must start with https://"
  tools curl curl

  # -q first: no ~/.curlrc may turn verification off; --globoff: [ ] { } in the URL are data.
  local opts=(-q --globoff --silent --show-error --proto "=https" --proto-redir "=https" --location --max-redirs 5
    --max-time "${ARCHIVE_TIMEOUT:-600}"
    --write-out 'status=%{http_code}\nsize=%{size_download}\nlength=%header{content-length}\nrange=%header{content-range}\nlast_modified=%header{last-modified}\netag=%header{etag}\ndate=%header{date}\nfinal_url=%{url_effective}\nredirects=%{num_redirects}\n')
  [[ -n ${ARCHIVE_CA_FILE:-} ]] && opts+=(--cacert "$ARCHIVE_CA_FILE")
  local cond=()
  [[ -n ${ARCHIVE_IF_NONE_MATCH:-} ]] && cond+=(--header "If-None-Match: $ARCHIVE_IF_NONE_MATCH")

  # The URL reaches curl on its standard input, as a config line: a token in its query is never on
  # a command line (ps). Inside the double quotes, \ and " are escaped.
  url=${ARCHIVE_URL//\\/\\\\}
  url="url = \"${url//\"/\\\"}\""
  # curl's own words, its "curl: (N) ..." line only: its advice after it would push the cause out
  # of the three lines the log keeps. A global: the EXIT trap runs after main has returned.
  err=$(mktemp)
  trap 'rm -f -- "$err"' EXIT
  local attempts=0 max=$((${ARCHIVE_RETRIES:-2} + 1)) delay=${ARCHIVE_RETRY_DELAY:-10} retried=""
  local out rc status code transient text
  while :; do
    attempts=$((attempts + 1))
    rc=0
    if [[ $verb == probe ]]; then
      # One byte; a server that ignores the range answers 200 with the whole file: the reader
      # stops after one byte, and curl with it (code 23): the URL answered all the same.
      out=$(curl "${opts[@]}" --range 0-0 --output >(head -c 1 >/dev/null) -K - <<<"$url" 2>"$err") || rc=$?
      [[ $rc == 23 && $out =~ status=2 ]] && rc=0
    else
      out=$(curl "${opts[@]}" "${cond[@]}" --output "$2.part" -K - <<<"$url" 2>"$err") || rc=$?
    fi
    status=$(sed -n 's/^status=//p' <<<"${out:-}")
    if [[ $verb == get && $rc == 0 && $status == 2?? ]] &&
      ! grep -qx "length=\(\|$(sed -n 's/^size=//p' <<<"$out")\)" <<<"$out"; then
      rc=18 # fewer bytes than Content-Length announced
    fi
    read -r code transient text < <(cause "$rc" "${status:-000}")
    [[ $code == 0 ]] || grep -m 1 '^curl: (' "$err" >&2 || true
    [[ $code == 0 || $transient == no || $attempts -ge $max ]] && break
    printf 'fetch: attempt %d failed (%s), retrying in %ss\n' "$attempts" "$text" "$delay" >&2
    retried=$text
    sleep "$delay"
    delay=$((delay * 2))
  done

  if [[ $verb == probe ]]; then
    # The size: Content-Range's total ("bytes 0-0/SIZE"), else Content-Length.
    local size
    size=$(sed -n 's|^range=bytes [0-9]*-[0-9]*/\([0-9][0-9]*\).*|\1|p' <<<"$out")
    [[ -n $size ]] || size=$(sed -n 's/^length=//p' <<<"$out")
    grep -v '^size=\|^length=\|^range=' <<<"$out"
    printf 'size=%s\n' "$size"
  else
    grep -v '^length=\|^range=' <<<"$out"
  fi
  printf 'attempts=%s\n' "$attempts"
  [[ -n $retried ]] && printf 'retried=%s\n' "$retried"
  if [[ $code != 0 ]]; then
    [[ $verb == get ]] && rm -f -- "$2.part"
    local final
    final=$(sed -n 's/^final_url=//p' <<<"$out")
    [[ $final == "$ARCHIVE_URL" || -z $final ]] || text+=" (redirected to $final)"
    die "$code" "$text: $ARCHIVE_URL"
  fi
  if [[ $verb == get && $status == 304 ]]; then
    rm -f -- "$2.part" # nothing came: the zip on the server is still the one archived last
  elif [[ $verb == get ]]; then
    mv -f -- "$2.part" "$2"
  fi
}

main "$@"
