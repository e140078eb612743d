#!/usr/bin/env bash
# flow.sh: one nightly run made of the step scripts alone, called in archive's order with archive's
# inputs, for the variants the built archive cannot run yet (compressor reuse, conditional
# download, hashing the dump without extracting it). No log, lock, mail or retention; the same
# server calls as archive (check, list, put, verify, rename, the checksum file, list).
#
# Usage: flow.sh STEPS_DIR WORK_DIR STATE_FILE NAME
# Inputs (environment): ARCHIVE_URL, ARCHIVE_CA_FILE, ARCHIVE_EXPECTED_FILE and ARCHIVE_DEST_* as
#   the steps take them, and:
#   FLOW_COMPRESSOR   pack.sh's ARCHIVE_COMPRESSOR (default reuse)
#   FLOW_CONDITIONAL  yes: send the ETag and Last-Modified of the last archived zip (default no)
#   FLOW_HASH_ONLY    yes: with reuse, check and hash the dump without writing it (unpack.sh ZIP -)
# Exit codes: 0 archived, 3 unchanged (nothing packed or uploaded), else the failing step's code.
set -euo pipefail
umask 077

fact() { sed -n "s/^$1=//p" <<<"$2"; }

main() {
  [[ $# == 4 ]] || { echo "usage: flow.sh STEPS_DIR WORK_DIR STATE_FILE NAME" >&2; exit 2; }
  local s=$1 state=$3 name=$4 compressor=${FLOW_COMPRESSOR:-reuse}
  work=$(mktemp -d "$2/run-XXXXXX")
  trap 'rm -rf -- "$work"' EXIT
  export TMPDIR=$work # as archive gives its steps
  local zip=$work/source.zip sql=$work/$ARCHIVE_EXPECTED_FILE tgz=$work/$name out prev=""
  [[ -f $state ]] && prev=$(<"$state")

  "$s/fetch.sh" probe >/dev/null
  local cond=()
  if [[ ${FLOW_CONDITIONAL:-no} == yes && -n $prev ]]; then
    cond=("ARCHIVE_IF_NONE_MATCH=$(fact etag "$prev")" "ARCHIVE_IF_MODIFIED_SINCE=$(fact last_modified "$prev")")
  fi
  out=$(env "${cond[@]}" "$s/fetch.sh" get "$zip")
  if [[ $(fact status "$out") == 304 ]]; then
    echo "flow: not modified since the last archive (HTTP 304): nothing downloaded"
    return 3
  fi
  local validators
  validators=$(grep -E '^(etag|last_modified)=' <<<"$out" || true)

  local target=$sql
  [[ $compressor == reuse && ${FLOW_HASH_ONLY:-no} == yes ]] && target=-
  out=$("$s/unpack.sh" "$zip" "$target")
  local sum
  sum=$(fact sha256 "$out")
  if [[ $sum == "$(fact sha256 "$prev")" ]]; then
    echo "flow: the dump is unchanged: nothing packed or uploaded"
    return 3
  fi
  [[ $compressor == reuse ]] || rm -f -- "$zip"

  out=$(ARCHIVE_COMPRESSOR=$compressor ARCHIVE_ZIP=$zip "$s/pack.sh" "$sql" "$tgz")
  rm -f -- "$zip" "$sql"
  local tsum tsize
  tsum=$(fact sha256 "$out") tsize=$(fact size "$out")

  local d=$s/dest-sftp.sh
  "$d" check
  "$d" list >/dev/null
  "$d" put "$tgz" ".$name.part"
  "$d" verify ".$name.part" "$tsum" "$tsize" >/dev/null
  "$d" rename ".$name.part" "$name"
  # archive's record: the checksum file beside the archive, uploaded the same way
  printf '%s  %s\n' "$tsum" "$name" >"$work/$name.sha256"
  "$d" put "$work/$name.sha256" ".$name.sha256.part"
  "$d" verify ".$name.sha256.part" "$(sha256sum <"$work/$name.sha256" | cut -d' ' -f1)" >/dev/null
  "$d" rename ".$name.sha256.part" "$name.sha256"
  "$d" list >/dev/null # retention reads the folder again
  printf 'sha256=%s\n%s\n' "$sum" "$validators" >"$state"
  echo "flow: archived $name ($tsize bytes, $(fact compressor "$out"))"
}

main "$@"
