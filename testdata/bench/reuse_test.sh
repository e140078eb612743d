#!/usr/bin/env bash
# reuse_test.sh: pack.sh's compressor reuse against zips made every way zip makes them. Each .tgz
# it writes must pass gzip -t and tar -tzf, hold one file of the member's name, and that file
# must be byte for byte what tar -c writes for the dump; members that cannot be reused must be
# compressed instead, and inconsistent inputs refused with pack.sh's codes.
#
# Usage: testdata/bench/reuse_test.sh     (needs zip, unzip, gzip, tar; a few seconds)
set -euo pipefail
umask 077

here=$(cd -- "$(dirname -- "$0")" && pwd)
pack=$here/../../steps/pack.sh
pass=0 fail=0

ok() { pass=$((pass + 1)); printf 'ok   %s\n' "$1"; }
ko() { fail=$((fail + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }

# expect NAME CODE COMPRESSOR ZIP SQL [VAR=VALUE...]: pack.sh reuse exits CODE; on 0 it reports
# COMPRESSOR and its archive is the tar of SQL, gzip-valid.
expect() {
  local name=$1 code=$2 want=$3 zip=$4 sql=$5 out rc=0
  shift 5
  rm -f -- "$t/out.tgz"
  out=$(cd -- "$t" && env ARCHIVE_COMPRESSOR=reuse ARCHIVE_ZIP="$zip" "$@" "$pack" "$sql" out.tgz 2>"$t/err") || rc=$?
  [[ $rc == "$code" ]] || { ko "$name" "exit $rc, not $code: $(tail -n 1 "$t/err")"; return; }
  [[ $code == 0 ]] || { ok "$name"; return; }
  [[ $out == *"compressor=$want"* ]] || { ko "$name" "compressor is not $want: $out"; return; }
  gzip -t "$t/out.tgz" 2>/dev/null || { ko "$name" "gzip -t fails"; return; }
  [[ $(tar -tzf "$t/out.tgz") == "${sql##*/}" ]] || { ko "$name" "tar -tzf lists $(tar -tzf "$t/out.tgz" | head -c 100)"; return; }
  [[ $(tar -xzOf "$t/out.tgz" | sha256sum) == "$(sha256sum <"$t/${sql##*/}")" ]] || { ko "$name" "the file differs"; return; }
  if [[ $want == reuse && -f $t/$sql ]]; then
    gzip -dc "$t/out.tgz" | cmp -s - <(cd -- "$t" && tar -cf - -- "$sql") || { ko "$name" "not what tar -c writes"; return; }
  fi
  ok "$name"
}

main() {
  t=$(mktemp -d)
  trap 'rm -rf -- "$t"' EXIT
  cd -- "$t"
  for ((i = 0; i < 40000; i++)); do echo "INSERT INTO t VALUES ($i,'name $i','2026-01-$((i % 28 + 1))');"; done >dump.sql
  head -c 300000 dump.sql >'d[1] -x.sql'
  echo other >other.txt
  zip -q one.zip dump.sql
  zip -q multi.zip other.txt dump.sql 'd[1] -x.sql'
  zip -q -fz z64.zip dump.sql
  zip -q -0 stored.zip dump.sql
  zip -q -P secret enc.zip dump.sql
  zip -q - dump.sql | cat >stream.zip # to a pipe: sizes and CRC in a data descriptor
  cp one.zip badcrc.zip
  printf 'ZZ' | dd of=badcrc.zip bs=1 seek=14 conv=notrunc status=none # the member header's CRC
  echo x >small.sql

  expect "one member" 0 reuse "$t/one.zip" dump.sql
  expect "third member, name with [ ] - and space" 0 reuse "$t/multi.zip" 'd[1] -x.sql'
  expect "zip64" 0 reuse "$t/z64.zip" dump.sql
  expect "data descriptor" 0 reuse "$t/stream.zip" dump.sql
  expect "SQL not on disk" 0 reuse "$t/one.zip" absent/dump.sql
  expect "full proof with ARCHIVE_SHA256" 0 reuse "$t/one.zip" dump.sql ARCHIVE_SHA256="$(sha256sum <dump.sql | cut -d' ' -f1)"
  expect "stored member: compressed instead" 0 "$(command -v pigz >/dev/null && echo pigz || echo gzip)" "$t/stored.zip" dump.sql
  expect "encrypted member: compressed instead" 0 "$(command -v pigz >/dev/null && echo pigz || echo gzip)" "$t/enc.zip" dump.sql
  expect "wrong ARCHIVE_SHA256" 22 reuse "$t/one.zip" dump.sql ARCHIVE_SHA256="$(printf '0%.0s' {1..64})"
  expect "SQL of another size" 20 reuse "$t/one.zip" small.sql ARCHIVE_MEMBER=dump.sql
  expect "no such member" 20 reuse "$t/multi.zip" small.sql
  expect "directory and member disagree on the CRC" 20 reuse "$t/badcrc.zip" dump.sql
  expect "not a zip" 20 reuse "$t/other.txt" dump.sql
  expect "ARCHIVE_ZIP missing" 2 reuse "" dump.sql

  # The same archive, byte for byte, whether the dump is on disk as unpack.sh extracts it or not
  # (compressor reuse with the dump only hashed): a rerun finds it already on the server.
  local a b
  mkdir x
  ARCHIVE_EXPECTED_FILE=dump.sql "$here/../../steps/unpack.sh" "$t/one.zip" "$t/x/dump.sql" >/dev/null
  a=$(ARCHIVE_COMPRESSOR=reuse ARCHIVE_ZIP=$t/one.zip "$pack" "$t/x/dump.sql" "$t/a.tgz" | sed -n 's/^sha256=//p')
  b=$(ARCHIVE_COMPRESSOR=reuse ARCHIVE_ZIP=$t/one.zip "$pack" "$t/absent/dump.sql" "$t/b.tgz" | sed -n 's/^sha256=//p')
  if [[ -n $a && $a == "$b" ]]; then ok "the same archive with or without the dump on disk"; else ko "the same archive with or without the dump on disk" "$a / $b"; fi

  printf '%d passed, %d failed\n' "$pass" "$fail"
  ((fail == 0))
}

main "$@"
