#!/usr/bin/env bash
# dest-s3.sh: the archive server as an S3-compatible bucket over HTTPS (curl --aws-sigv4): AWS,
# Backblaze B2, Wasabi, OVH, Scaleway, a self-hosted Garage or Versity gateway.
#
# Usage: dest-s3.sh check                    log in; the bucket exists (read-only)
#        dest-s3.sh put LOCAL NAME           upload LOCAL as NAME: one PUT, or a multipart upload
#                                            past ARCHIVE_DEST_PART_SIZE; the server checks every
#                                            byte against the sha256 sent with it; NAME appears
#                                            whole or not at all (prints rename=atomic)
#        dest-s3.sh rename NAME FINAL        refused: an object is never renamed, put writes the
#                                            final name directly (see the technical memo)
#        dest-s3.sh verify NAME SHA256 [SIZE]  the object NAME has SIZE bytes and the sha256 the
#                                            server checked at upload, or, with
#                                            ARCHIVE_DEST_VERIFY=download, the sha256 of its bytes
#                                            read back (prints size, sha256, verified)
#        dest-s3.sh list                     one "NAME<TAB>SIZE" line per object under the prefix
#        dest-s3.sh delete NAME              remove NAME
#        dest-s3.sh get NAME LOCAL           download NAME to LOCAL (through LOCAL.part)
# Inputs (environment):
#   ARCHIVE_DEST_ENDPOINT                 the service, https://HOST[:PORT] (required)
#   ARCHIVE_DEST_BUCKET                   required
#   ARCHIVE_DEST_REGION                   default us-east-1
#   ARCHIVE_DEST_PREFIX                   the folder in the bucket, such as nightly/ (default:
#                                         the top of the bucket)
#   ARCHIVE_DEST_ACCESS_KEY_FILE          the access key id on its first line, the secret key on
#                                         its second (required; never on a command line)
#   ARCHIVE_DEST_ADDRESSING               path (default: https://HOST/BUCKET/KEY) or virtual
#                                         (https://BUCKET.HOST/KEY, AWS's own)
#   ARCHIVE_DEST_CA_FILE                  the CA that signed the service's certificate when it is
#                                         not a public one (the certificate is always verified)
#   ARCHIVE_DEST_PART_SIZE                bytes per part of a multipart upload, and the size past
#                                         which one is used (default 67108864, at least 5 MiB);
#                                         curl holds one part in memory while it sends it
#   ARCHIVE_DEST_TIMEOUT                  seconds to connect and without progress (default 30)
#   ARCHIVE_DEST_VERIFY                   auto (default): the sha256 the server checked at upload
#                                         when it keeps one, else the size; size; or download
# Exit codes (the same for every dest-*.sh):
#   0 OK                                  24 permission denied on the server
#   1 other failure                       25 no space left on the server
#   2 usage or missing input              26 the transfer was interrupted
#   20 host unreachable or refused        27 verification failed (checksum or size differs)
#   21 host key or certificate untrusted  28 timed out
#   22 login refused (key id or secret)   29 no such file on the server
#   23 the bucket is missing              30 not a mount point (nfs only)
#                                         31 the server does not offer TLS (ftps only)
#                                         127 a required tool is missing
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, curl_login, curl_failed, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# The sha256 of nothing: the signed payload of a request without a body.
readonly empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

name() { [[ -n $1 && $1 != */* && $1 != *[$'\r\n']* ]] || die 2 "bad file name \"$1\""; }

# s3 [CURL_ARGS...] URL: one signed request; the login is read from fd 3, never argv. Returns 0
# on a 2xx answer (and no <Error> in a 200 body, which S3 sends for a failed multipart
# completion), else 1 with $crc (curl's code), $code (the HTTP status) and $tmp/resp set for fail.
# The payload's sha256 is signed: $payload, the sha256 of nothing unless the caller sets it.
s3() {
  crc=0
  : >"$tmp/hdr"
  : >"$tmp/resp"
  curl "${opts[@]}" -K /dev/fd/3 -D "$tmp/hdr" -H "x-amz-content-sha256: ${payload:-$empty_sha256}" "$@" 3<<<"$login" 2>"$err" || crc=$?
  payload=''
  code=$(awk '/^HTTP\// { c = $2 } END { print c }' "$tmp/hdr" 2>/dev/null || true)
  [[ $crc == 0 && $code == 2?? ]] && ! grep -qs '<Error>' "$tmp/resp"
}

# header NAME: a header of the last answer (case-insensitive), without its CR.
header() { awk -v h="$1:" 'tolower($1) == tolower(h) { v = $2 } END { print v }' "$tmp/hdr" | tr -d '\r'; }

# tag NAME FILE: the text of every <NAME> element in FILE, one per line, XML entities decoded.
tag() {
  LC_ALL=C awk -v RS='<' -v t="$1" '
    { i = index($0, ">"); if (!i) next; n = substr($0, 1, i - 1); sub(/[ \t\r\n].*/, "", n)
      if (n != t) next; v = substr($0, i + 1)
      gsub(/&lt;/, "<", v); gsub(/&gt;/, ">", v); gsub(/&quot;/, "\"", v); gsub(/&apos;/, "'\''", v)
      gsub(/&#34;/, "\"", v); gsub(/&#39;/, "'\''", v); gsub(/&amp;/, "\\&", v); print v }' "$2"
}

# fail WHAT MISSING: the cause of the last failed request; MISSING is the code for a missing key.
fail() {
  local what=$1 msg s3code
  msg=$(grep '^curl: (' "$err" | tail -n 1 || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  curl_failed "$what" "$crc" "$hostport"
  s3code=$(tag Code "$tmp/resp" | head -n 1)
  case $s3code in
    InvalidAccessKeyId | SignatureDoesNotMatch | XAdminUserNotFound)
      die 22 "$what: login refused ($s3code) for the key id in $ARCHIVE_DEST_ACCESS_KEY_FILE: check both its lines" ;;
    AuthorizationHeaderMalformed | InvalidRegion | IllegalLocationConstraintException)
      die 22 "$what: login refused ($s3code): the bucket is not in region $region" ;;
    RequestTimeTooSkewed) die 22 "$what: login refused: this machine's clock differs from the service's by more than 15 minutes" ;;
    AccessDenied | AllAccessDisabled) die 24 "$what: permission denied ($s3code) in $where" ;;
    NoSuchBucket) die 23 "$what: the bucket $bucket does not exist on $hostport" ;;
    NoSuchKey | NoSuchUpload) die "$2" "$what: no such object in $where" ;;
    BadDigest | XAmzContentSHA256Mismatch | InvalidDigest | InvalidPart)
      die 27 "$what: the service refused the bytes it received ($s3code): they differ from their sha256" ;;
    EntityTooLarge | QuotaExceeded | InsufficientStorage | StorageFull) die 25 "$what: no space left on the service ($s3code)" ;;
  esac
  case $code in
    404) die "$2" "$what: no such object in $where" ;;
    403) die 24 "$what: permission denied in $where (HTTP 403)" ;;
    507 | 413) die 25 "$what: no space left on the service (HTTP $code)" ;;
  esac
  local reason
  reason=$(tag Message "$tmp/resp" | head -n 1 | cut -c1-160)
  die 1 "$what: the service answered HTTP ${code:-nothing}${s3code:+ $s3code}${reason:+: $reason}"
}

# url NAME: the object's address.
url() { printf '%s%s' "$base" "$(urlencode "$prefix$1" /)"; }

# b64hex: a sha256 in base64 (as S3 gives it) read on stdin, printed as hex.
b64hex() { base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }

# hexb64 HEX: a sha256 in hex, printed in base64 (as S3 takes it).
hexb64() { printf '%s' "$1" | sed 's/../\\x&/g' | xargs -0 printf '%b' | base64; }

verb_check() {
  # A listing of at most one key proves the login, the region and the bucket; nothing is written.
  s3 -o "$tmp/resp" "$base?list-type=2&max-keys=1&prefix=$(urlencode "$prefix")" || fail "connection" 23
}

# sum_args SHA256: $sum_args, the header that has the service check the bytes against SHA256
# (none for a service that does not check them).
sum_args() {
  sum_args=()
  [[ $checked == no ]] || sum_args=(-H "x-amz-checksum-sha256: $(hexb64 "$1")")
}

# put_part LOCAL OFFSET COUNT: one part of a multipart upload ($upload_id, $part), read twice
# from LOCAL (its sha256, then the upload, which curl holds in memory: at most part_size), never
# copied to disk; its ETag and checksum are kept for the completion.
put_part() {
  local sum
  sum=$(slice "$@" | sha256sum | cut -d' ' -f1)
  sum_args "$sum"
  # Not in a pipe: s3 sets $crc and $code for fail, which a subshell would lose.
  payload=$sum s3 -o "$tmp/resp" -X PUT --data-binary @- -H 'Content-Type: application/octet-stream' "${sum_args[@]}" \
    "$(url "$key")?partNumber=$part&uploadId=$(urlencode "$upload_id")" < <(slice "$@") || return 1
  printf '<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>' "$part" "$(header ETag)" >>"$tmp/parts"
  [[ $checked == no ]] || printf '<ChecksumSHA256>%s</ChecksumSHA256>' "$(hexb64 "$sum")" >>"$tmp/parts"
  printf '</Part>' >>"$tmp/parts"
}

# slice LOCAL OFFSET COUNT: COUNT bytes of LOCAL from OFFSET, on stdout.
slice() { dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none || die 1 "upload: cannot read $1"; }

# multipart LOCAL SIZE: a multipart upload of LOCAL to $key, part by part, each checked by the
# service; it is aborted on failure, so that no part is left billed and invisible.
multipart() {
  local off=0 n
  local algo=()
  [[ $checked == no ]] || algo=(-H 'x-amz-checksum-algorithm: SHA256')
  s3 -o "$tmp/resp" -X POST "${algo[@]}" "$(url "$key")?uploads=" || fail "upload" 23
  upload_id=$(tag UploadId "$tmp/resp")
  [[ -n $upload_id ]] || die 1 "upload: the service gave no UploadId"
  part=0
  : >"$tmp/parts"
  while ((off < $2)); do
    part=$((part + 1)) n=$((part_size < $2 - off ? part_size : $2 - off))
    put_part "$1" "$off" "$n" || { abort; fail "upload (part $part)" 23; }
    off=$((off + n))
  done
  printf '<CompleteMultipartUpload>%s</CompleteMultipartUpload>' "$(cat "$tmp/parts")" >"$tmp/complete"
  payload=$(sha256sum <"$tmp/complete" | cut -d' ' -f1) s3 -o "$tmp/resp" -X POST --data-binary "@$tmp/complete" \
    -H 'Content-Type: application/xml' "$(url "$key")?uploadId=$(urlencode "$upload_id")" || { abort; fail "upload (completion)" 23; }
}

# abort: drop the multipart upload under way; its own failure changes nothing of the cause.
abort() {
  local c=$crc h=$code
  cp -f -- "$tmp/resp" "$tmp/resp.kept" 2>/dev/null || true
  s3 -o /dev/null -X DELETE "$(url "$key")?uploadId=$(urlencode "$upload_id")" || true
  crc=$c code=$h
  cp -f -- "$tmp/resp.kept" "$tmp/resp" 2>/dev/null || true
}

# checks_sums: does the service refuse bytes that differ from the x-amz-checksum-sha256 sent with
# them? A probe object sent with a wrong one must be refused; a service that takes it (and would
# then show the sha256 it was told as its own) gets no checksum, so that verify reads the size.
checks_sums() {
  local probe=archive-check-probe-$$.tmp
  printf 'probe\n' >"$tmp/probe"
  payload=$(sha256sum <"$tmp/probe" | cut -d' ' -f1)
  if s3 -o "$tmp/resp" -T "$tmp/probe" -H "x-amz-checksum-sha256: $(hexb64 "$empty_sha256")" "$(url "$probe")"; then
    s3 -o /dev/null -X DELETE "$(url "$probe")" || true
    return 1
  fi
  [[ $(tag Code "$tmp/resp") == BadDigest ]] || fail "upload" 23
}

verb_put() {
  [[ $# == 2 && -f $1 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
  name "$2"
  local size sum key=$2
  checked=yes
  checks_sums || checked=no
  size=$(stat -c %s -- "$1")
  if ((size > part_size)); then
    multipart "$1" "$size"
  else
    sum=$(sha256sum <"$1" | cut -d' ' -f1)
    sum_args "$sum"
    payload=$sum s3 -o "$tmp/resp" -T "$1" "${sum_args[@]}" "$(url "$2")" || fail "upload" 23
  fi
  echo rename=atomic # the object appears whole, or not at all
  echo "server_checks_sha256=$checked"
}

verb_rename() {
  die 2 "rename: an S3 object is never renamed; put writes the final name, whole or not at all"
}

verb_verify() {
  [[ $# == 2 || $# == 3 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
  name "$1"
  local size sum='' how=$mode stored
  if ! s3 -o /dev/null -I -H 'x-amz-checksum-mode: ENABLED' "$(url "$1")"; then
    # A HEAD answer has no body to say why: a refused login is told by check's listing.
    local c=$crc h=$code
    [[ $h != 403 ]] || verb_check
    crc=$c code=$h
    fail "verify" 29
  fi
  size=$(header Content-Length)
  stored=$(header x-amz-checksum-sha256)
  if [[ $mode == download ]]; then
    s3 -o >(sha256sum >"$tmp/sum") "$(url "$1")" || fail "verify download" 29
    wait "$!"
    sum=$(cut -d' ' -f1 "$tmp/sum")
  elif [[ $mode == auto && $stored =~ ^[A-Za-z0-9+/]{43}=$ ]]; then
    # A whole object's sha256, as the service checked it at upload (a multipart object has a
    # checksum of its parts' checksums, NAME-N, which proves nothing of the whole here).
    sum=$(b64hex <<<"$stored") how=checksum
  else
    how=size
  fi
  verified "$1" "$2" "${3:-}" "$size" "$sum" "$how"
}

verb_list() {
  local token='' last query
  : >"$tmp/list"
  while :; do
    # Every query parameter encoded and in byte order, as the signature wants them.
    query="delimiter=%2F&list-type=2&prefix=$(urlencode "$prefix")"
    [[ -z $token ]] || query="continuation-token=$(urlencode "$token")&$query"
    s3 -o "$tmp/resp" "$base?$query" || fail "list" 23
    # One "KEY<TAB>SIZE" per <Contents>: its <Key> and <Size>, in that order.
    LC_ALL=C awk -v RS='<' '
      { i = index($0, ">"); if (!i) next; n = substr($0, 1, i - 1); v = substr($0, i + 1) }
      n == "Contents" { k = ""; s = "" }
      n == "Key" { k = v }
      n == "Size" { s = v }
      n == "/Contents" { gsub(/&lt;/, "<", k); gsub(/&gt;/, ">", k); gsub(/&quot;|&#34;/, "\"", k); gsub(/&apos;|&#39;/, "'\''", k)
        gsub(/&amp;/, "\\&", k); print k "\t" s }' "$tmp/resp" >>"$tmp/list"
    [[ $(tag IsTruncated "$tmp/resp") == true ]] || break
    last=$token token=$(tag NextContinuationToken "$tmp/resp")
    [[ -n $token ]] || break
    # A service that hands the same page again would keep this loop going until the time limit.
    [[ $token != "$last" ]] || die 1 "list: the service gave the same continuation token twice; its listing never ends"
  done
  # The prefix left out; an object in a deeper folder or with a control character is not ours.
  LC_ALL=C awk -F '\t' -v p="$prefix" 'substr($1, 1, length(p)) == p { n = substr($1, length(p) + 1)
    if (n != "" && n !~ /\// && n !~ /[\001-\037\177]/) print n "\t" $2 }' "$tmp/list"
}

verb_delete() {
  [[ $# == 1 ]] || die 2 "usage: delete NAME"
  name "$1"
  # S3 answers 204 for a key that is not there: ask first, so that a missing file says so.
  s3 -o /dev/null -I "$(url "$1")" || fail "delete" 29
  s3 -o "$tmp/resp" -X DELETE "$(url "$1")" || fail "delete" 29
}

verb_get() {
  [[ $# == 2 ]] || die 2 "usage: get NAME LOCAL"
  name "$1"
  s3 -o "$2.part" "$(url "$1")" || { cp -f -- "$2.part" "$tmp/resp" 2>/dev/null; rm -f -- "$2.part"; fail "download" 29; }
  mv -f -- "$2.part" "$2"
}

main() {
  help "$@"
  need ARCHIVE_DEST_ENDPOINT ARCHIVE_DEST_BUCKET ARCHIVE_DEST_ACCESS_KEY_FILE
  [[ $ARCHIVE_DEST_ENDPOINT =~ ^https://[^/@]+/?$ ]] || die 2 "ARCHIVE_DEST_ENDPOINT must be https://HOST[:PORT] (TLS is required), not \"$ARCHIVE_DEST_ENDPOINT\""
  tools curl curl
  tools coreutils sha256sum base64 od
  local id secret
  [[ -r $ARCHIVE_DEST_ACCESS_KEY_FILE ]] || die 22 "cannot read the access key file $ARCHIVE_DEST_ACCESS_KEY_FILE"
  { IFS= read -r id && IFS= read -r secret; } <"$ARCHIVE_DEST_ACCESS_KEY_FILE" || true
  [[ -n $id && -n $secret ]] || die 22 "the access key file $ARCHIVE_DEST_ACCESS_KEY_FILE must hold the key id on its first line and the secret on its second"

  # Globals, not locals: the EXIT trap and fail run after main has returned or from anywhere.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  err=$tmp/err payload=''
  bucket=$ARCHIVE_DEST_BUCKET region=${ARCHIVE_DEST_REGION:-us-east-1} prefix=${ARCHIVE_DEST_PREFIX:-}
  [[ $bucket =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die 2 "ARCHIVE_DEST_BUCKET \"$bucket\" is not a bucket name (3 to 63 of a-z 0-9 . -)"
  prefix=${prefix#/}
  [[ -z $prefix || $prefix == */ ]] || prefix+=/
  hostport=${ARCHIVE_DEST_ENDPOINT#https://}
  hostport=${hostport%/}
  case ${ARCHIVE_DEST_ADDRESSING:-path} in
    path) base=https://$hostport/$bucket/ ;;
    virtual) base=https://$bucket.$hostport/ ;;
    *) die 2 "ARCHIVE_DEST_ADDRESSING must be path or virtual, not \"$ARCHIVE_DEST_ADDRESSING\"" ;;
  esac
  where=s3://$bucket/$prefix
  part_size=${ARCHIVE_DEST_PART_SIZE:-67108864}
  [[ $part_size =~ ^[0-9]+$ ]] || part_size=0
  ((part_size >= 5242880)) || die 2 "ARCHIVE_DEST_PART_SIZE must be a number of bytes of at least 5 MiB (5242880)"
  local t=${ARCHIVE_DEST_TIMEOUT:-30} mode=${ARCHIVE_DEST_VERIFY:-auto}
  [[ $mode == auto || $mode == size || $mode == download ]] || die 2 "ARCHIVE_DEST_VERIFY must be auto, size or download, not \"$mode\""
  login=$(curl_login "$id" "$secret")
  opts=(-q -sS --proto "=https" --aws-sigv4 "aws:amz:$region:s3" --connect-timeout "$t" --speed-limit 1 --speed-time "$t")
  [[ -n ${ARCHIVE_DEST_CA_FILE:-} ]] && opts+=(--cacert "$ARCHIVE_DEST_CA_FILE")

  dispatch "$@"
}

main "$@"
