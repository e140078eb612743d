#!/usr/bin/env bash
# baseline.sh: what the job costs done by hand, to compare archive with.
#
# Usage: baseline.sh sequential DIR   the plain commands a script would run, one after the other:
#                                     curl -o, unzip, sha256sum, tar czf, rsync
#        baseline.sh floor DIR        the least any such job can cost: curl -o /dev/null, then
#                                     unzip -p | sha256sum, then the upload of the final file
#                                     (DIR/NAME, left by sequential)
# Inputs (environment): BENCH_URL, BENCH_CA (PEM), BENCH_SSH_CONFIG (a Host "archive-dest"),
#   BENCH_DEST (the folder on the server), BENCH_NAME (the archive's name).
# Output (stdout): one "t_WHAT=SECONDS" line per command.
set -euo pipefail
umask 077

# timed LABEL CMD...: runs CMD, prints its wall time.
timed() {
  local label=$1 t0=$EPOCHREALTIME
  shift
  "$@" >/dev/null
  printf 't_%s=%s\n' "$label" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
}

unzip_hash() { unzip -p "$1" dump.sql | sha256sum; }

main() {
  local mode=${1:-} dir=${2:-}
  [[ ($mode == sequential || $mode == floor) && -d $dir ]] || { echo "usage: baseline.sh sequential|floor DIR" >&2; exit 2; }
  local rsync=(rsync -e "ssh -F $BENCH_SSH_CONFIG")
  if [[ $mode == sequential ]]; then
    timed curl curl -sS --cacert "$BENCH_CA" -o "$dir/dump.zip" "$BENCH_URL"
    timed unzip unzip -q -o "$dir/dump.zip" dump.sql -d "$dir"
    timed sha256sum sha256sum "$dir/dump.sql"
    timed tar tar -C "$dir" -czf "$dir/$BENCH_NAME" dump.sql
    timed rsync "${rsync[@]}" "$dir/$BENCH_NAME" "archive-dest:$BENCH_DEST/$BENCH_NAME"
  else
    timed curl curl -sS --cacert "$BENCH_CA" -o /dev/null "$BENCH_URL"
    timed unzip_sha256sum unzip_hash "$dir/dump.zip"
    timed rsync "${rsync[@]}" "$dir/$BENCH_NAME" "archive-dest:$BENCH_DEST/floor-$BENCH_NAME"
  fi
}

main "$@"
