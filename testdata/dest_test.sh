#!/usr/bin/env bash
# dest_test.sh [PROTO...]: one list of scenarios run against every destination step
# (steps/dest-PROTO.sh) and a real server on loopback: sftp ftps webdav smb nfs s3 (default:
# all). Needs root (test users, vsftpd's PAM login, tmpfs mounts), sshd, vsftpd, nginx with
# dav-ext, smbd, smbclient, curl, rsync, versitygw and gofakes3 (testdata/deps.sh test). Prints one line per check and "N passed, M failed" last;
# exits 1 when a check failed. Stops every server it started, even when interrupted.
set -euo pipefail
umask 022
unset "${!ARCHIVE_@}"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
servers=$root/testdata/servers
work=$(mktemp -d)
chmod 755 "$work" # the test users must reach the server folders inside
passed=0 failed=0 rc=0 proto='' over=() running=() mounts=() sampler='' srv=''

cleanup() {
  local s
  [[ -z $sampler ]] || kill "$sampler" 2>/dev/null || true
  for s in "${running[@]}"; do "$servers/${s%% *}" stop "${s#* }" || true; done
  for s in "${mounts[@]}"; do umount -- "$s" 2>/dev/null || true; done
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { passed=$((passed + 1)) && printf 'ok    %-6s %s\n' "$proto" "$1"; }
ko() {
  failed=$((failed + 1))
  printf 'FAIL  %-6s %s: %s\n' "$proto" "$1" "$2"
  tail -n 2 "$work/err" | sed 's/^/        /'
}
skip() { printf 'skip  %-6s %s\n' "$proto" "$1"; }

# call VERB ARGS...: run the step with the extra environment in "over"; sets rc, $work/out, err.
call() {
  rc=0
  env "${over[@]}" "$root/steps/dest-$proto.sh" "$@" >"$work/out" 2>"$work/err" || rc=$?
  over=()
}

# expect CODE WHAT VERB ARGS...: the step exits with CODE.
expect() {
  local want=$1 what=$2
  shift 2
  call "$@"
  if [[ $rc == "$want" ]]; then ok "$what"; else ko "$what" "exit $rc, want $want"; fi
}

# verdict WHAT COMMAND...: COMMAND succeeds.
verdict() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else ko "$what" "not so"; fi
}

# env_of DIR KEY: a value from a test server's DIR/env.
env_of() { sed -n "s/^$2=//p" "$1/env"; }

# serve SCRIPT DIR [ARGS]: start a test server, remembered for the cleanup.
serve() {
  "$servers/$1" start "$2" "${@:3}" >/dev/null
  running+=("$1 $2")
  [[ -z $(env_of "$2" PASSWORD_FILE) ]] || cat -- "$(env_of "$2" PASSWORD_FILE)" >>"$work/secrets"
}

# stop_during_put: upload the big file and stop the server once more than 1 MB has arrived.
stop_during_put() {
  local i pid
  "$root/steps/dest-$proto.sh" put "$work/big" .big.tgz.part >"$work/out" 2>"$work/err" &
  pid=$!
  for ((i = 0; i < 200; i++)); do
    [[ -n $(find "$spool" -type f -size +1M 2>/dev/null) ]] && break
    sleep 0.05
  done
  "halt_$proto"
  rc=0
  wait "$pid" || rc=$?
}

# The scenarios, the same for every protocol. Variables from setup_PROTO: dest (the folder on
# disk), hashes (verify checks sha256 by itself), renames (no: put writes the final name, whole
# or not at all), bad_login, bad_trust, missing (env overrides),
# spool (where a partial upload shows), srv (the server's DIR); halt_PROTO stops the server.
scenarios() {
  local sum1 sum2 size1 size2 n
  sum1=$(sha256sum <"$work/f1" | cut -d' ' -f1) size1=$(stat -c %s "$work/f1")
  sum2=$(sha256sum <"$work/f2" | cut -d' ' -f1) size2=$(stat -c %s "$work/f2")

  expect 0 "check passes with a good login and folder" check
  verdict "check leaves nothing behind" test -z "$(ls -A "$dest")"

  # A server without rename (s3) gets the final name from put itself: part is that name.
  local part=.t1.tgz.part
  [[ $renames == yes ]] || part=t1.tgz
  expect 0 "put uploads under the temporary name (s3: the final one)" put "$work/f1" "$part"
  verdict "the uploaded file holds the bytes" cmp -s "$work/f1" "$dest/$part"
  expect 0 "verify accepts the right sha256 and size" verify "$part" "$sum1" "$size1"
  verdict "verify prints size=" grep -qx "size=$size1" "$work/out"
  if [[ $hashes == yes ]]; then verdict "verify prints sha256=" grep -qx "sha256=$sum1" "$work/out"; fi
  if [[ $renames == yes ]]; then expect 0 "rename gives the final name" rename "$part" t1.tgz; fi
  expect 0 "list succeeds" list
  verdict "list shows only the final name and its size" diff <(printf 't1.tgz\t%s\n' "$size1") "$work/out"

  expect 0 "put a second version" put "$work/f2" "$part"
  if [[ $renames == yes ]]; then expect 0 "rename over an existing final name" rename "$part" t1.tgz; fi
  verdict "the final name now holds the second version" cmp -s "$work/f2" "$dest/t1.tgz"
  expect 0 "list after the replace" list
  verdict "list shows one file with the new size" diff <(printf 't1.tgz\t%s\n' "$size2") "$work/out"

  expect 27 "verify refuses a wrong size" verify t1.tgz "$sum2" "$((size2 + 1))"
  [[ $hashes == yes ]] || over=(ARCHIVE_DEST_VERIFY=download)
  expect 0 "verify with sha256 (download when it cannot hash remotely)" verify t1.tgz "$sum2" "$size2"
  verdict "verify prints the sha256" grep -qx "sha256=$sum2" "$work/out"
  [[ $hashes == yes ]] || over=(ARCHIVE_DEST_VERIFY=download)
  expect 27 "verify refuses a wrong sha256 of the right size" verify t1.tgz "$sum1" "$size2"
  expect 29 "verify of a missing file" verify nothere.tgz "$sum1" "$size1"

  expect 0 "get downloads" get t1.tgz "$work/got"
  verdict "get round-trips byte-identical" cmp -s "$work/f2" "$work/got"
  expect 29 "get of a missing file" get nothere.tgz "$work/got2"
  verdict "a failed get leaves no local file" test ! -e "$work/got2"
  if [[ $renames == yes ]]; then expect 29 "rename of a missing file" rename nothere.tgz t2.tgz; fi

  expect 0 "delete removes the file" delete t1.tgz
  expect 0 "list after the delete" list
  verdict "list is empty" test ! -s "$work/out"
  expect 29 "delete of a missing file" delete t1.tgz

  if ((${#bad_login[@]})); then
    over=("${bad_login[@]}") && expect 22 "a wrong password or key is refused" check
  else skip "a wrong password or key is refused (no login)"; fi
  if ((${#bad_trust[@]})); then
    over=("${bad_trust[@]}") && expect 21 "an untrusted certificate or host key is refused" check
  else skip "an untrusted certificate or host key is refused (no TLS)"; fi
  over=("${missing[@]}") && expect 23 "a missing folder is reported" check
  extra_"$proto"

  if declare -F "halt_$proto" >/dev/null; then
    stop_during_put
    if [[ $rc == 20 || $rc == 26 ]]; then ok "a server stopped during put fails it ($rc)"; else ko "a server stopped during put fails it" "exit $rc, want 20 or 26"; fi
    verdict "no file under the final name" test ! -e "$dest/big.tgz"
    n=$(stat -c %s "$dest/.big.tgz.part" 2>/dev/null || echo 0)
    verdict "the temporary file ($n bytes) is not complete" test "$n" -lt "$(stat -c %s "$work/big")"
  fi
}

setup_sftp() {
  local d=$work/sftp
  renames=yes
  serve sshd.sh "$d"
  export ARCHIVE_DEST_HOST=127.0.0.1 ARCHIVE_DEST_PORT ARCHIVE_DEST_USER ARCHIVE_DEST_PATH
  export ARCHIVE_DEST_IDENTITY_FILE ARCHIVE_DEST_KNOWN_HOSTS
  ARCHIVE_DEST_PORT=$(env_of "$d" PORT) ARCHIVE_DEST_USER=$(env_of "$d" USER)
  ARCHIVE_DEST_IDENTITY_FILE=$(env_of "$d" IDENTITY_FILE) ARCHIVE_DEST_KNOWN_HOSTS=$(env_of "$d" KNOWN_HOSTS)
  dest=$(env_of "$d" DEST) ARCHIVE_DEST_PATH=$dest spool=$dest hashes=yes
  ssh-keygen -q -t ed25519 -N '' -f "$work/other_key"
  printf '[127.0.0.1]:%s %s\n' "$ARCHIVE_DEST_PORT" "$(cut -d' ' -f1,2 "$work/other_key.pub")" >"$work/other_known_hosts"
  bad_login=(ARCHIVE_DEST_IDENTITY_FILE="$work/other_key")
  bad_trust=(ARCHIVE_DEST_KNOWN_HOSTS="$work/other_known_hosts")
  missing=(ARCHIVE_DEST_PATH="$dest/missing/deeper")
  srv=$d
}
# sshd.sh stop ends the listener only: end the session processes it forked first.
halt_sftp() { pkill -P "$(env_of "$srv" PID)" || true; "$servers/sshd.sh" stop "$srv"; }
extra_sftp() { :; }

setup_ftps() {
  local d=$work/ftps
  renames=yes
  serve vsftpd.sh "$d"
  export ARCHIVE_DEST_HOST=127.0.0.1 ARCHIVE_DEST_PORT ARCHIVE_DEST_USER ARCHIVE_DEST_PATH
  export ARCHIVE_DEST_PASSWORD_FILE ARCHIVE_DEST_CA_FILE
  ARCHIVE_DEST_PORT=$(env_of "$d" PORT) ARCHIVE_DEST_USER=$(env_of "$d" USER)
  ARCHIVE_DEST_PASSWORD_FILE=$(env_of "$d" PASSWORD_FILE) ARCHIVE_DEST_CA_FILE=$(env_of "$d" CA_FILE)
  ARCHIVE_DEST_PATH=$(env_of "$d" FOLDER) dest=$(env_of "$d" DEST) spool=$(env_of "$d" DEST) hashes=no
  bad_login=(ARCHIVE_DEST_PASSWORD_FILE="$work/wrong_password")
  bad_trust=(ARCHIVE_DEST_CA_FILE="$work/otherca/ca.pem")
  missing=(ARCHIVE_DEST_PATH="missing/deeper")
  srv=$d
}
halt_ftps() { "$servers/vsftpd.sh" stop "$srv"; }
extra_ftps() {
  over=(ARCHIVE_DEST_PATH="$dest") && expect 0 "an absolute folder works" check
  serve vsftpd.sh "$work/ftp-plain" plain
  over=(ARCHIVE_DEST_PORT="$(env_of "$work/ftp-plain" PORT)") && expect 31 "a server without TLS is refused" check
  "$servers/vsftpd.sh" stop "$work/ftp-plain"
}

setup_webdav() {
  local d=$work/webdav url
  renames=yes
  serve webdav.sh "$d"
  export ARCHIVE_DEST_URL ARCHIVE_DEST_USER ARCHIVE_DEST_PASSWORD_FILE ARCHIVE_DEST_CA_FILE
  url=$(env_of "$d" URL) ARCHIVE_DEST_URL=$url ARCHIVE_DEST_USER=$(env_of "$d" USER)
  ARCHIVE_DEST_PASSWORD_FILE=$(env_of "$d" PASSWORD_FILE) ARCHIVE_DEST_CA_FILE=$(env_of "$d" CA_FILE)
  dest=$(env_of "$d" DEST) spool=$d/body hashes=no
  bad_login=(ARCHIVE_DEST_PASSWORD_FILE="$work/wrong_password")
  bad_trust=(ARCHIVE_DEST_CA_FILE="$work/otherca/ca.pem")
  missing=(ARCHIVE_DEST_URL="${url}missing/deeper/")
  srv=$d
}
halt_webdav() { "$servers/webdav.sh" stop "$srv"; }
extra_webdav() {
  over=(ARCHIVE_DEST_URL="${ARCHIVE_DEST_URL}new/") && expect 23 "check of a missing collection says so" check
  verdict "check created nothing (it is read-only)" test ! -e "$dest/new"
}

setup_smb() {
  local d=$work/smb
  renames=yes
  serve smbd.sh "$d"
  export ARCHIVE_DEST_HOST=127.0.0.1 ARCHIVE_DEST_PORT ARCHIVE_DEST_USER ARCHIVE_DEST_PATH
  export ARCHIVE_DEST_PASSWORD_FILE ARCHIVE_DEST_SHARE
  ARCHIVE_DEST_PORT=$(env_of "$d" PORT) ARCHIVE_DEST_USER=$(env_of "$d" USER)
  ARCHIVE_DEST_PASSWORD_FILE=$(env_of "$d" PASSWORD_FILE) ARCHIVE_DEST_SHARE=$(env_of "$d" SHARE)
  ARCHIVE_DEST_PATH=$(env_of "$d" FOLDER) dest=$(env_of "$d" DEST) spool=$(env_of "$d" DEST) hashes=no
  bad_login=(ARCHIVE_DEST_PASSWORD_FILE="$work/wrong_password")
  bad_trust=()
  missing=(ARCHIVE_DEST_PATH="missing/deeper")
  srv=$d
}
halt_smb() { "$servers/smbd.sh" stop "$srv"; }
extra_smb() {
  over=(ARCHIVE_DEST_SHARE=nothere) && expect 23 "a missing share is reported" check
  over=(ARCHIVE_DEST_PATH=.) && expect 0 "the top of the share works" check
}

setup_nfs() {
  dest=$work/nfs renames=yes
  mkdir -p -- "$dest" "$work/plain dir" "$work/small"
  mount -t tmpfs -o size=64m tmpfs "$dest" && mounts+=("$dest")
  mount -t tmpfs -o size=1m tmpfs "$work/small" && mounts+=("$work/small")
  export ARCHIVE_DEST_PATH=$dest
  spool=$dest hashes=yes bad_login=() bad_trust=()
  missing=(ARCHIVE_DEST_PATH="$dest/missing/deeper")
}
extra_nfs() {
  over=(ARCHIVE_DEST_PATH="$work/plain dir") && expect 30 "a folder that is not a mount point is refused" check
  over=(ARCHIVE_DEST_PATH="$work/plain dir" ARCHIVE_DEST_REQUIRE_MOUNT=no) && expect 0 "... unless ARCHIVE_DEST_REQUIRE_MOUNT=no" check
  over=(ARCHIVE_DEST_PATH="$work/small") && expect 25 "a full file system is reported" put "$work/f1" .full.part
  verdict "a failed put leaves no partial file" test ! -e "$work/small/.full.part"
}

setup_s3() {
  local d=$work/s3
  serve s3.sh "$d" versitygw
  export ARCHIVE_DEST_ENDPOINT ARCHIVE_DEST_BUCKET ARCHIVE_DEST_PREFIX ARCHIVE_DEST_ACCESS_KEY_FILE ARCHIVE_DEST_CA_FILE
  ARCHIVE_DEST_ENDPOINT=$(env_of "$d" ENDPOINT) ARCHIVE_DEST_BUCKET=$(env_of "$d" BUCKET) ARCHIVE_DEST_PREFIX=$(env_of "$d" PREFIX)
  ARCHIVE_DEST_ACCESS_KEY_FILE=$(env_of "$d" ACCESS_KEY_FILE) ARCHIVE_DEST_CA_FILE=$(env_of "$d" CA_FILE)
  sed -n 2p "$ARCHIVE_DEST_ACCESS_KEY_FILE" >>"$work/secrets"
  dest=$(env_of "$d" DEST) spool=$d/data hashes=yes renames=no
  { sed -n 1p "$ARCHIVE_DEST_ACCESS_KEY_FILE" && echo "not the secret"; } >"$work/wrong_s3_key"
  bad_login=(ARCHIVE_DEST_ACCESS_KEY_FILE="$work/wrong_s3_key")
  bad_trust=(ARCHIVE_DEST_CA_FILE="$work/otherca/ca.pem")
  missing=(ARCHIVE_DEST_BUCKET=no-such-bucket)
  srv=$d
}
halt_s3() { "$servers/s3.sh" stop "$srv"; }
extra_s3() {
  local sum
  head -c 12000000 /dev/urandom >"$work/f3"
  sum=$(sha256sum <"$work/f3" | cut -d' ' -f1)
  over=(ARCHIVE_DEST_PART_SIZE=5242880) && expect 0 "a multipart upload (3 parts of 5 MiB)" put "$work/f3" m.tgz
  verdict "the object holds the bytes of every part" cmp -s "$work/f3" "$dest/m.tgz"
  expect 0 "verify of a multipart object by its size" verify m.tgz "$sum" 12000000
  verdict "... says it read the size, not a checksum of its parts" grep -qx verified=size "$work/out"
  over=(ARCHIVE_DEST_VERIFY=download) && expect 0 "... or by its bytes read back" verify m.tgz "$sum" 12000000
  expect 2 "rename is refused: put writes the final name" rename m.tgz m2.tgz
  over=(ARCHIVE_DEST_PART_SIZE=1000) && expect 2 "a part size under 5 MiB is refused" list
  expect 0 "delete the multipart object" delete m.tgz
  # Virtual-host addressing, AWS's own: the bucket in the host name (archives.localhost).
  local virtual=(ARCHIVE_DEST_ADDRESSING=virtual ARCHIVE_DEST_ENDPOINT="https://localhost:$(env_of "$srv" PORT)")
  over=("${virtual[@]}") && expect 0 "virtual-host addressing: check" check
  over=("${virtual[@]}") && expect 0 "virtual-host addressing: put" put "$work/f1" v.tgz
  verdict "... the object is in the bucket" cmp -s "$work/f1" "$dest/v.tgz"
  over=("${virtual[@]}") && expect 0 "virtual-host addressing: list" list
  verdict "... list shows it" grep -q "^v.tgz"$'\t' "$work/out"
  over=("${virtual[@]}") && expect 0 "virtual-host addressing: delete" delete v.tgz
  # A service that takes any checksum (gofakes3) is sent none, so that verify reads the size.
  serve s3.sh "$work/s3-fake" gofakes3
  over=(ARCHIVE_DEST_ENDPOINT="$(env_of "$work/s3-fake" ENDPOINT)" ARCHIVE_DEST_CA_FILE="$(env_of "$work/s3-fake" CA_FILE)"
    ARCHIVE_DEST_ACCESS_KEY_FILE="$(env_of "$work/s3-fake" ACCESS_KEY_FILE)") && expect 0 "put to a service that checks no checksum" put "$work/f1" f.tgz
  verdict "... says so" grep -qx server_checks_sha256=no "$work/out"
  over=(ARCHIVE_DEST_ENDPOINT="$(env_of "$work/s3-fake" ENDPOINT)" ARCHIVE_DEST_CA_FILE="$(env_of "$work/s3-fake" CA_FILE)"
    ARCHIVE_DEST_ACCESS_KEY_FILE="$(env_of "$work/s3-fake" ACCESS_KEY_FILE)") && expect 0 "... and verify reads the size there" verify f.tgz "$(sha256sum <"$work/f1" | cut -d' ' -f1)" 3000000
  verdict "... not a checksum it was told" grep -qx verified=size "$work/out"
}

main() {
  [[ $(id -u) == 0 ]] || { echo "dest_test.sh: run as root (test users, PAM, mounts)" >&2; exit 2; }
  local protos=("$@") p
  ((${#protos[@]})) || protos=(sftp ftps webdav smb nfs s3)
  head -c 3000000 /dev/urandom >"$work/f1"
  head -c 2000000 /dev/urandom >"$work/f2"
  head -c 200000000 /dev/urandom >"$work/big"
  printf 'wrong password\n' >"$work/wrong_password"
  "$servers/mkcert.sh" "$work/otherca"
  : >"$work/secrets"
  # Sample every command line while the steps run: none may hold a password.
  # shellcheck disable=SC2009 # every command line is the point, not finding one process
  (while :; do
    ps -eo args= | grep -F -f "$work/secrets" >>"$work/ps.leaks" || true
    ps -eo args= | grep -c '^curl \|^smbclient \|^ssh \|^rsync ' >>"$work/ps.seen" || true
    sleep 0.02
  done) &
  sampler=$!
  for p in "${protos[@]}"; do
    proto=$p
    declare -F "setup_$p" >/dev/null || { echo "dest_test.sh: unknown protocol \"$p\"" >&2; exit 2; }
    "setup_$p"
    scenarios
    unset "${!ARCHIVE_@}"
  done
  proto=all
  # A control: a secret on a command line must be caught.
  printf 'control-%s\n' "$$" >>"$work/secrets"
  bash -c 'sleep 0.5; :' "control-$$"
  kill "$sampler" && sampler=''
  verdict "the ps sampler catches a secret on a command line (control)" grep -q "control-$$" "$work/ps.leaks"
  verdict "ps saw $(awk '{ n += $1 } END { print n }' "$work/ps.seen") tool command lines, none with a password" \
    test -z "$(grep -v "control-$$" "$work/ps.leaks")"
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

main "$@"
