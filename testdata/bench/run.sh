#!/usr/bin/env bash
# run.sh: the benchmark (make bench). Never a timed test: it prints and records what it measured.
#
# Usage: testdata/bench/run.sh [SIZE...]   dump sizes such as 64M 512M 2G (default: all three)
# For each size: a realistic SQL dump (generated once, cached), zipped, served by testdata/httpsd
# over HTTPS and archived to a local sshd (testdata/servers/sshd.sh), all on loopback. Measured,
# in this order, on the same files: the sequential baseline and the floor (baseline.sh), archive as
# built, archive again on the unchanged dump, the scrub, an encrypted run, a run with two
# destinations (the sshd and an S3 bucket, testdata/servers/s3.sh), then the variants
# (compressor reuse; the proposed steps in proposed/*.patch with a conditional download), each
# also on the unchanged dump.
# Inputs (environment):
#   BENCH_SIZES    the sizes when none is given (default "64M 512M 2G")
#   BENCH_DIR      work folder; the dumps and zips stay there for the next run (default
#                  /var/tmp/archive-bench; needs about 3 times the largest dump free)
#   BENCH_ARCHIVE  the archive binary to measure (default: built from this tree)
#   BENCH_DOC      the Markdown file whose generated part is rewritten (default docs/benchmarks.md;
#                  - for none). Results of sizes not run this time are kept from earlier runs.
#   BENCH_REPEAT   how many times the floor and the variants run, the fastest kept (default 2):
#                  the machine is shared, and a neighbour's load shows as noise of 20-50 %
#   BENCH_PATIENCE seconds the whole benchmark may wait for a quiet machine before a run (at most
#                  20 per run; default 180)
# Needs root (sshd.sh logs in as a test user), go, zip, unzip, curl, pigz, rsync, openssh-server,
# openssl, patch, age and versitygw (testdata/deps.sh test). Exit codes: 0 done, 1 a run failed or an archive did not prove, 2 usage.
set -euo pipefail
umask 022

repo=$(cd -- "$(dirname -- "$0")/../.." && pwd)
bench=${BENCH_DIR:-/var/tmp/archive-bench}
doc=${BENCH_DOC:-$repo/docs/benchmarks.md}
name=20262811.tgz # the archive's name for --date 2026-11-28 with the default %Y%d%m
failed=0

die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

say() { printf '\n== %s\n' "$*"; }

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

setup() {
  mkdir -p -- "$bench"/{bin,data,www,results,run}
  say "building archive, httpsd, gendump, measure"
  (cd -- "$repo" && go build -o "$bench/bin/" ./testdata/httpsd ./testdata/bench/gendump ./testdata/bench/measure)
  archive=${BENCH_ARCHIVE:-$bench/bin/archive}
  export ARCHIVE_BIN=$archive # flow.sh runs the steps by hand: unpack.sh and pack.sh run it
  [[ -n ${BENCH_ARCHIVE:-} ]] || (cd -- "$repo" && go build -o "$archive" .)
  # The proposed steps: today's steps with the patches of proposed/ applied, when they still apply.
  rm -rf -- "$bench/steps-proposed"
  cp -r -- "$repo/steps" "$bench/steps-proposed"
  local p
  for p in "$repo"/testdata/bench/proposed/*.patch; do
    [[ -f $p ]] || continue
    if patch --dry-run -s -p2 -d "$bench/steps-proposed" <"$p" >/dev/null 2>&1; then
      patch -s -p2 -d "$bench/steps-proposed" <"$p"
    else
      printf 'bench: %s does not apply (already in steps/?); that step is used as it is\n' "${p##*/}" >&2
    fi
  done
  "$repo/testdata/servers/mkcert.sh" "$bench/tls"
  web_port=$(free_port)
  "$bench/bin/httpsd" -addr "127.0.0.1:$web_port" -dir "$bench/www" -cert "$bench/tls/server.pem" -key "$bench/tls/server.key" \
    2>"$bench/httpsd.log" &
  web=$!
  "$repo/testdata/servers/sshd.sh" start "$bench/sshd"
  # The off-site copy of the two-destination run: an S3 service (the Versity gateway).
  "$repo/testdata/servers/s3.sh" start "$bench/s3" versitygw >/dev/null
  # shellcheck source=/dev/null
  . "$bench/sshd/env"
  ssh_port=${PORT:?} ssh_user=${USER:?} dest=${DEST:?}
  cat >"$bench/ssh_config" <<CFG
Host archive-dest
  HostName 127.0.0.1
  Port $ssh_port
  User $ssh_user
  IdentityFile $bench/sshd/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $bench/sshd/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
CFG
  export ARCHIVE_DEST_HOST=127.0.0.1 ARCHIVE_DEST_PORT=$ssh_port ARCHIVE_DEST_USER=$ssh_user ARCHIVE_DEST_PATH=$dest
  export ARCHIVE_DEST_IDENTITY_FILE=$bench/sshd/id_ed25519 ARCHIVE_DEST_KNOWN_HOSTS=$bench/sshd/known_hosts
  export ARCHIVE_CA_FILE=$bench/tls/ca.pem ARCHIVE_EXPECTED_FILE=dump.sql ARCHIVE_STEPS_DIR=$repo/steps
  local i
  for ((i = 0; i < 50; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$web_port") 2>/dev/null && break; sleep 0.1; done
}

cleanup() {
  [[ -n ${web:-} ]] && kill "$web" 2>/dev/null
  [[ -f $bench/sshd/sshd.pid ]] && "$repo/testdata/servers/sshd.sh" stop "$bench/sshd"
  [[ -f $bench/s3/server.pid ]] && "$repo/testdata/servers/s3.sh" stop "$bench/s3"
  true
}

# dataset SIZE: the dump and its zip, made once; a new generator makes them again.
dataset() {
  local size=$1 d=$bench/data/$1 stamp
  stamp="$(sha256sum <"$repo/testdata/bench/gendump/main.go" | cut -c1-16) $size"
  if [[ $(cat -- "$d/stamp" 2>/dev/null) != "$stamp" || ! -f $bench/www/$size/dump.zip ]]; then
    say "$size: generating the dump and zipping it (once; cached in $d)"
    rm -rf -- "$d" "$bench/www/$size"
    mkdir -p -- "$d" "$bench/www/$size"
    "$bench/bin/gendump" -size "$size" -o "$d/dump.sql"
    (cd -- "$d" && zip -q "$bench/www/$size/dump.zip" dump.sql)
    # Written before the night's run, as an export is: a Last-Modified younger than a minute is
    # not trusted for a conditional download.
    touch -d '1 hour ago' -- "$bench/www/$size/dump.zip"
    openssl dgst -sha256 -r "$d/dump.sql" | cut -d' ' -f1 >"$d/sha256"
    echo "$stamp" >"$d/stamp"
  fi
}

# fresh: empty server folders, work folder and state, written-back pages flushed.
fresh() {
  find "$dest" -mindepth 1 -delete
  [[ ! -d $bench/s3 ]] || find "$(sed -n 's/^DEST=//p' "$bench/s3/env")" -mindepth 1 -delete
  rm -rf -- "$bench/run"
  mkdir -p -- "$bench/run/work" "$bench/run/state" "$bench/run/base"
  sync
}

fresh_reuse() {
  fresh
  conf reuse
}

# conf COMPRESSOR [RECIPIENTS] [offsite]: archive's conf for the current size; with RECIPIENTS,
# the archive is encrypted to them; with offsite, a second destination, the S3 bucket.
conf() {
  cat >"$bench/run/archive.conf" <<CONF
[source]
url = $url
expected_file = dump.sql
ca_file = $bench/tls/ca.pem
[archive]
work_dir = $bench/run/work
state_dir = $bench/run/state
compressor = $1
encrypt_to = ${2:-}
[destination]
protocol = sftp
host = 127.0.0.1
port = $ssh_port
user = $ssh_user
path = $dest
identity_file = $bench/sshd/id_ed25519
known_hosts = $bench/sshd/known_hosts
[log]
file = $bench/run/archive.log
CONF
  if [[ ${3:-} == offsite ]]; then
    local e=$bench/s3/env
    cat >>"$bench/run/archive.conf" <<CONF
[destination offsite]
protocol = s3
endpoint = $(sed -n 's/^ENDPOINT=//p' "$e")
bucket = $(sed -n 's/^BUCKET=//p' "$e")
prefix = $(sed -n 's/^PREFIX=//p' "$e")
access_key_file = $(sed -n 's/^ACCESS_KEY_FILE=//p' "$e")
ca_file = $(sed -n 's/^CA_FILE=//p' "$e")
CONF
  fi
  chmod 600 "$bench/run/archive.conf"
}

# quiet MAX: waits, MAX seconds at most, for a second in which the machine's CPUs are 80 % idle,
# so that a neighbour's burst (a build or a test suite on this shared machine) does not land in a
# run. Prints the seconds waited, "busy" when it gave up.
quiet() {
  local i a b total idle
  for ((i = 0; i < $1; i++)); do
    read -ra a </proc/stat
    sleep 1
    read -ra b </proc/stat
    total=$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[4] - a[5] - a[6] - a[7] - a[8]))
    idle=$((b[4] + b[5] - a[4] - a[5]))
    ((idle * 10 >= total * 8)) && { echo "$i"; return; }
  done
  echo busy
}

# measured LABEL CMD...: runs CMD under measure, keeps its report as results/SIZE/LABEL.txt.
measured() {
  local label=$1 out=$results/$1.txt rc=0 waited cap
  shift
  sync
  cap=$((patience < 20 ? patience : 20)) waited=0
  if ((cap > 0)); then
    waited=$(quiet "$cap")
    patience=$((patience - ${waited/busy/$cap}))
  fi
  "$bench/bin/measure" -o "$out" -watch "$bench/run" \
    -file "$bench/run/*/dump.sql" -file "$bench/run/work/*/dump.sql" -- "$@" >"$results/$label.out" 2>&1 || rc=$?
  printf 'cmd=%s\nquiet_wait=%s\n' "${*/#$bench/\$BENCH_DIR}" "$waited" >>"$out"
  printf '%-22s %8ss  exit %s%s\n' "$label" "$(sed -n 's/^wall=//p' "$out")" "$rc" \
    "$(case $waited in 0) ;; busy) echo "  (the machine stayed busy: noisy)" ;; *) echo "  (waited $waited s for a quiet machine)" ;; esac)"
  return 0
}

# best N LABEL CMD...: CMD measured N times, each after $prepare (a function, or nothing); the
# fastest is kept as LABEL, with every wall time in walls=.
best() {
  local n=$1 label=$2 i walls=() fastest
  shift 2
  for ((i = 1; i <= n; i++)); do
    [[ -z ${prepare:-} ]] || "$prepare"
    measured "$label.$i" "$@"
    walls+=("$(sed -n 's/^wall=//p' "$results/$label.$i.txt") $i")
  done
  fastest=$(printf '%s\n' "${walls[@]}" | sort -n | head -n 1 | cut -d' ' -f2)
  cp -- "$results/$label.$fastest.txt" "$results/$label.txt"
  cp -- "$results/$label.$fastest.out" "$results/$label.out"
  echo "walls=$(printf '%s\n' "${walls[@]}" | sort -n -k2 | cut -d' ' -f1 | paste -sd' ')" >>"$results/$label.txt"
}

# archived LABEL: the archive's size on the server, for the report.
archived() { echo "tgz_bytes=$(stat -c %s -- "$dest/$name" 2>/dev/null || echo 0)" >>"$results/$1.txt"; }

# prove LABEL: the archive on the server is a valid gzip tar holding only the generated dump, in one
# pass: pigz checks every gzip member's CRC and length (gzip -t), tar lists (tar -tz), and the
# dump's sha256 is compared.
prove() {
  local f=$dest/$name got st=0
  got=$(pigz -dc -- "$f" 2>/dev/null | tar -xvOf - 2>"$results/$1.list" | openssl dgst -sha256 -r) || st=$?
  if [[ $st == 0 && ${got%% *} == "$(cat -- "$bench/data/$size/sha256")" && $(<"$results/$1.list") == dump.sql ]]; then
    echo "proof=ok" >>"$results/$1.txt"
  else
    echo "proof=FAILED" >>"$results/$1.txt"
    printf 'bench: %s: the archive on the server is not a valid .tgz of the dump\n' "$1" >&2
    failed=1
  fi
}

one_size() {
  size=$1 results=$bench/results/$1 url=https://127.0.0.1:$web_port/$1/dump.zip
  dataset "$size"
  rm -rf -- "$results"
  mkdir -p -- "$results"
  {
    date -u '+date=%Y-%m-%d %H:%M UTC'
    echo "zip_bytes=$(stat -c %s -- "$bench/www/$size/dump.zip")"
    echo "sql_bytes=$(stat -c %s -- "$bench/data/$size/dump.sql")"
  } >"$results/info.txt"
  say "$size: dump $(sed -n 's/^sql_bytes=//p' "$results/info.txt") bytes, zip $(sed -n 's/^zip_bytes=//p' "$results/info.txt") bytes"

  fresh
  export BENCH_URL=$url BENCH_CA=$bench/tls/ca.pem BENCH_SSH_CONFIG=$bench/ssh_config BENCH_DEST=$dest BENCH_NAME=$name
  local prepare=""
  measured baseline "$repo/testdata/bench/baseline.sh" sequential "$bench/run/base"
  best "$repeat" floor "$repo/testdata/bench/baseline.sh" floor "$bench/run/base"

  fresh
  conf auto
  measured archive "$archive" -c "$bench/run/archive.conf" --date 2026-11-28
  archived archive
  measured archive-unchanged "$archive" -c "$bench/run/archive.conf" --date 2026-11-28
  # The scrub reading every archive back, and a run encrypting with age (issue 14's costs).
  measured verify-download "$archive" -c "$bench/run/archive.conf" verify --download
  fresh
  age-keygen -o "$bench/run/identity.txt" 2>/dev/null
  age-keygen -y "$bench/run/identity.txt" >"$bench/run/recipients.txt"
  conf auto "$bench/run/recipients.txt"
  measured encrypted "$archive" -c "$bench/run/archive.conf" --date 2026-11-28
  echo "tgz_bytes=$(stat -c %s -- "$dest/$name.age" 2>/dev/null || echo 0)" >>"$results/encrypted.txt"
  # Two copies: the SFTP server and the S3 bucket, one after the other (issue 15).
  fresh
  conf auto "" offsite
  measured two-destinations "$archive" -c "$bench/run/archive.conf" --date 2026-11-28
  archived two-destinations

  # compressor = reuse: by archive once it accepts it, else by the steps in archive's order.
  prepare=fresh_reuse
  fresh_reuse
  local run=("$archive" -c "$bench/run/archive.conf" --date 2026-11-28)
  # Does archive take it? A conf with an http:// URL is refused with every other problem listed.
  sed 's|^url = https:|url = http:|' "$bench/run/archive.conf" >"$bench/run/probe.conf"
  if { "$archive" -c "$bench/run/probe.conf" 2>&1 || true; } | grep -q 'compressor'; then
    echo "  (archive does not take compressor = reuse yet: the same steps run by flow.sh)"
    run=(env ARCHIVE_URL="$url" FLOW_COMPRESSOR=reuse "$repo/testdata/bench/flow.sh" "$repo/steps" "$bench/run/work"
      "$bench/run/state/flow" "$name")
  fi
  best "$repeat" reuse "${run[@]}"
  archived reuse
  prove reuse
  measured reuse-unchanged "${run[@]}"

  # The proposed steps: conditional download, dump hashed while inflated by pigz, never written,
  # one SSH connection for the run.
  run=(env ARCHIVE_URL="$url" FLOW_COMPRESSOR=reuse FLOW_CONDITIONAL=yes FLOW_HASH_ONLY=yes
    "$repo/testdata/bench/flow.sh" "$bench/steps-proposed" "$bench/run/work" "$bench/run/state/flow" "$name")
  best "$repeat" proposed "${run[@]}"
  archived proposed
  prove proposed
  measured proposed-unchanged "${run[@]}"

  grep -h '^exit=' "$results"/{baseline,floor,archive,reuse,proposed,verify-download,encrypted,two-destinations}.txt | grep -qvx 'exit=0' && failed=1
  grep -h '^exit=' "$results"/*-unchanged.txt | grep -qvx 'exit=3' && failed=1
  return 0
}

main() {
  local sizes=("$@")
  repeat=${BENCH_REPEAT:-2} patience=${BENCH_PATIENCE:-180}
  [[ $patience =~ ^[0-9]+$ ]] || { echo "BENCH_PATIENCE must be a number of seconds" >&2; exit 2; }
  [[ $repeat =~ ^[1-9]$ ]] || { echo "BENCH_REPEAT must be 1 to 9" >&2; exit 2; }
  ((${#sizes[@]})) || read -ra sizes <<<"${BENCH_SIZES:-64M 512M 2G}"
  local s
  for s in "${sizes[@]}"; do
    [[ $s =~ ^[1-9][0-9]*[KMG]$ ]] || { echo "usage: run.sh [SIZE...]  (sizes such as 64M 512M 2G)" >&2; exit 2; }
  done
  [[ $(id -u) == 0 ]] || die "run it as root: sshd.sh logs in as a dedicated test user"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  setup
  for s in "${sizes[@]}"; do one_size "$s"; done
  "$repo/testdata/bench/report.sh" "$bench" "$doc"
  ((failed == 0)) || die "a run failed or an archive did not prove; see $bench/results/*/*.out"
}

main "$@"
