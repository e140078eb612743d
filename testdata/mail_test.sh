#!/usr/bin/env bash
#
# mail_test.sh - steps/mail.sh against real SMTP servers (mailpit) on loopback.
#
# Usage: testdata/mail_test.sh
# Starts three mailpit servers (STARTTLS, SMTPS, plain without TLS) with
# testdata/servers/mailpit.sh, sends real mails with steps/mail.sh (mutt, and msmtp
# for the MTA path), reads them back through mailpit's HTTP API, and checks every
# exit code of mail.sh. Stops the servers and removes its temp dir on exit.
# Needs: mutt, msmtp, openssl, curl, jq, mailpit (installed with go install if missing).
# Prints one line per check, then "N passed, M failed"; exits 1 if any check failed.
set -euo pipefail
umask 077

cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mail_test.XXXXXX")
servers=()
passed=0 failed=0

# finish stops what the test started and prints the summary, also when the test aborts.
finish() {
  local code=$? d
  for d in "${servers[@]}"; do "$root/testdata/servers/mailpit.sh" stop "$d" || true; done
  rm -rf "$tmp"
  if [[ $code -ne 0 && $failed -eq 0 ]]; then
    echo "FAILED  the test aborted (exit $code)"
    failed=1
  fi
  echo "$passed passed, $failed failed"
  exit $((failed > 0))
}
trap finish EXIT
trap 'exit 130' INT TERM

ok() { echo "ok      $1"; passed=$((passed + 1)); }
not_ok() { echo "FAILED  $1: $2"; failed=$((failed + 1)); }
check() { # check NAME CONDITION_DESCRIPTION COMMAND...
  local name=$1 what=$2
  shift 2
  if "$@"; then ok "$name"; else not_ok "$name" "$what"; fi
}

start_server() { # start_server NAME MODE [MAILPIT_FLAG...]
  "$root/testdata/servers/mailpit.sh" start "$tmp/$1" "${@:2}"
  servers+=("$tmp/$1")
}
absent() { ! grep -qF -- "$1" "$2"; }                 # absent TEXT FILE
all_0600() { [[ -s $1 ]] && ! grep -qv '^600 ' "$1"; } # all_0600 STAT_OUTPUT_FILE
has_text() { jq -e --arg t "$1" '.Text | contains($t)' >/dev/null; } # has_text TEXT <MESSAGE_JSON
empty_dir() { [[ -z $(ls -A "$1") ]]; }
usage_lists() { # usage_lists WORD...: mail.sh -h names every WORD
  local out w
  out=$("$root/steps/mail.sh" -h) || return 1
  for w in "$@"; do grep -qw -- "$w" <<<"$out" || return 1; done
}
val() { sed -n "s/^$2=//p" "$tmp/$1/env"; } # val SERVER KEY
api() { curl -fsS "http://127.0.0.1:$(val "$1" HTTP_PORT)/api/v1/$2"; }
msg_id() { api "$1" "messages?limit=500" | jq -r --arg s "$2" '[.messages[] | select(.Subject == $s)][0].ID // empty'; }
smtp_env() { # smtp_env SERVER TRANSPORT: the ARCHIVE_MAIL_* of that server, one per line
  printf '%s\n' "ARCHIVE_MAIL_TRANSPORT=$2" ARCHIVE_MAIL_SMTP_HOST=127.0.0.1 \
    "ARCHIVE_MAIL_SMTP_PORT=$(val "$1" SMTP_PORT)" "ARCHIVE_MAIL_SMTP_USER=$(val "$1" SMTP_USER)" \
    "ARCHIVE_MAIL_SMTP_PASSWORD_FILE=$(val "$1" SMTP_PASSWORD_FILE)" "ARCHIVE_MAIL_CA_FILE=$(val "$1" CA_FILE)"
}

# send [VAR=VALUE...]: runs mail.sh in a clean environment; stderr in $tmp/stderr, code in $rc.
rc=0
send() {
  rc=0
  env -i PATH="$PATH" HOME="$tmp/home" TMPDIR="$tmp/tmpdir" ARCHIVE_MAIL_FROM=archive@example.com \
    ARCHIVE_MAIL_TO=ops@example.com "$@" "$root/steps/mail.sh" 2>"$tmp/stderr" || rc=$?
}

expect() { # expect NAME CODE [VAR=VALUE...]: mail.sh exits CODE and its last stderr line is its own
  local name=$1 want=$2
  shift 2
  send "$@"
  if [[ $rc -ne $want ]]; then
    not_ok "$name" "exit $rc, want $want; stderr: $(tail -n 2 "$tmp/stderr" | tr '\n' '|')"
  elif [[ $want -ne 0 && $(tail -n 1 "$tmp/stderr") != "mail: "* ]]; then
    not_ok "$name" "last stderr line is not mail.sh's cause: $(tail -n 1 "$tmp/stderr")"
  else
    ok "$name (exit $rc: $(tail -n 1 "$tmp/stderr"))"
  fi
}

# watch PID: until PID ends, sample every process's args and the muttrc's mode.
watch() {
  while kill -0 "$1" 2>/dev/null; do
    ps -ww -eo args >>"$tmp/ps" || true
    stat -c '%a %n' "$tmp/work"/muttrc.?????? >>"$tmp/modes" 2>/dev/null || true
  done
}

# secret_check NAME VAR=VALUE...: sends in the background while watching, then checks that
# the password never showed in any process's arguments and the muttrc was 0600 and is gone.
secret_check() {
  local name=$1 password pid
  shift
  password=$(head -n 1 "$(val st SMTP_PASSWORD_FILE)")
  rm -rf "$tmp/work" "$tmp/ps" "$tmp/modes" && mkdir "$tmp/work" && : >"$tmp/ps" && : >"$tmp/modes"
  send ARCHIVE_MAIL_WORK_DIR="$tmp/work" "$@" &
  pid=$!
  watch "$pid"
  wait "$pid" || true
  check "$name: mutt was seen running" "no sample caught mutt" grep -q 'mutt -n -F' "$tmp/ps"
  check "$name: password in no process's arguments" "found in ps output" absent "$password" "$tmp/ps"
  check "$name: muttrc was 0600 while mutt ran" "modes: $(sort -u "$tmp/modes" | head -n 3)" all_0600 "$tmp/modes"
  check "$name: work dir left empty" "left: $(ls -A "$tmp/work")" empty_dir "$tmp/work"
}

main() {
  mkdir -p "$tmp/home" "$tmp/tmpdir"
  start_server st starttls
  start_server tls tls
  start_server plain plain --smtp-allowed-recipients '@example\.com$'
  local -a st tls
  mapfile -t st < <(smtp_env st smtp)
  mapfile -t tls < <(smtp_env tls smtps)

  # --- delivery: STARTTLS + AUTH, several recipients, body, attachment
  local subject id json
  subject="[archive] nightly report $RANDOM"
  printf 'Nightly run: OK\nÜmlauts survive, and so does this line.\n' >"$tmp/body.txt"
  printf 'Résumé — ✓\nFrom here on: trailing spaces   \n\ttab\n.\n%s\nno final newline' \
    "$(head -c 1200 /dev/zero | tr '\0' x)" >"$tmp/run.log"
  expect "STARTTLS with AUTH delivers" 0 "${st[@]}" ARCHIVE_MAIL_SUBJECT="$subject" \
    ARCHIVE_MAIL_TO="a@example.com, b@example.com ,c@example.com" \
    ARCHIVE_MAIL_BODY_FILE="$tmp/body.txt" ARCHIVE_MAIL_ATTACH="$tmp/run.log"
  id=$(msg_id st "$subject")
  json=$(api st "message/$id" 2>/dev/null || true)
  check "STARTTLS mail: subject found" "no message with subject $subject" test -n "$id"
  check "STARTTLS mail: three recipients" "To: $(jq -c '[.To[].Address]' <<<"$json")" \
    test "$(jq -c '[.To[].Address]' <<<"$json")" = '["a@example.com","b@example.com","c@example.com"]'
  check "STARTTLS mail: sender and login" "From/Username: $(jq -c '[.From.Address, .Username]' <<<"$json")" \
    test "$(jq -c '[.From.Address, .Username]' <<<"$json")" = '["archive@example.com","archive"]'
  # text/plain travels in MIME canonical form (CRLF line ends): compare with CRLF -> LF
  check "STARTTLS mail: body is the body file" "Text: $(jq -c .Text <<<"$json")" \
    cmp -s "$tmp/body.txt" <(jq -j .Text <<<"$json" | sed 's/\r$//')
  check "STARTTLS mail: one text/plain attachment named run.log" "$(jq -c .Attachments <<<"$json")" \
    test "$(jq -c '[.Attachments[] | [.FileName, .ContentType]]' <<<"$json")" = '[["run.log","text/plain"]]'
  api st "message/$id/part/$(jq -r '.Attachments[0].PartID' <<<"$json")" >"$tmp/got.log" 2>/dev/null || true
  check "STARTTLS mail: attachment identical to the file (CRLF -> LF)" "cmp: $(cmp "$tmp/run.log" <(sed 's/\r$//' "$tmp/got.log") 2>&1)" \
    cmp -s "$tmp/run.log" <(sed 's/\r$//' "$tmp/got.log")

  # --- delivery: SMTPS; the default test mail (no subject, no body file)
  expect "SMTPS delivers the default test mail" 0 "${tls[@]}"
  id=$(msg_id tls "[archive] test message from $(uname -n)")
  json=$(api tls "message/$id" 2>/dev/null || true)
  check "SMTPS mail: test subject and body" "no test mail in the SMTPS server" \
    has_text "test message from archive on $(uname -n)" <<<"${json:-null}"

  # --- delivery: MTA path, msmtp as sendmail over STARTTLS to the same server
  local sendmail
  sendmail=$("$root/testdata/servers/msmtp-mta.sh" "$tmp/st" starttls)
  subject="[archive] via msmtp $RANDOM"
  expect "MTA (msmtp) delivers" 0 ARCHIVE_MAIL_TRANSPORT=mta ARCHIVE_MAIL_SENDMAIL="$sendmail" \
    ARCHIVE_MAIL_SUBJECT="$subject" ARCHIVE_MAIL_TO="a@example.com, b@example.com"
  check "MTA mail: in mailpit" "no message with subject $subject" test -n "$(msg_id st "$subject")"
  check "MTA mail: sent by msmtp" "msmtp.log: $(tail -n 1 "$tmp/st/msmtp.log" 2>&1)" \
    grep -q "recipients=a@example.com,b@example.com .*exitcode=EX_OK" "$tmp/st/msmtp.log"

  # --- plain server (no TLS offered), only for addresses that need no password
  expect "no TLS, no user, STARTTLS=no delivers" 0 ARCHIVE_MAIL_TRANSPORT=smtp ARCHIVE_MAIL_STARTTLS=no \
    ARCHIVE_MAIL_SMTP_HOST=127.0.0.1 ARCHIVE_MAIL_SMTP_PORT="$(val plain SMTP_PORT)"

  # --- one scenario per failure cause
  printf 'wrong-password\n' >"$tmp/wrong-password"
  expect "wrong password -> 42" 42 "${st[@]}" ARCHIVE_MAIL_SMTP_PASSWORD_FILE="$tmp/wrong-password"
  expect "server wants a login, no user set -> 42" 42 "${st[@]}" ARCHIVE_MAIL_SMTP_USER=
  expect "CA not trusted (other test CA) -> 41" 41 "${st[@]}" ARCHIVE_MAIL_CA_FILE="$(val tls CA_FILE)"
  expect "CA not trusted (system bundle) -> 41" 41 "${tls[@]}" ARCHIVE_MAIL_CA_FILE=
  # on a terminal too, an untrusted certificate fails at once instead of prompting
  rc=0
  env -i PATH="$PATH" HOME="$tmp/home" TMPDIR="$tmp/tmpdir" ARCHIVE_MAIL_FROM=archive@example.com \
    ARCHIVE_MAIL_TO=ops@example.com "${tls[@]}" ARCHIVE_MAIL_CA_FILE= ARCHIVE_MAIL_TIMEOUT=10 \
    script -qec "$root/steps/mail.sh" /dev/null </dev/null >"$tmp/tty.out" 2>&1 || rc=$?
  check "CA not trusted on a terminal -> 41, no prompt" "exit $rc: $(tail -n 1 "$tmp/tty.out")" test "$rc" -eq 41
  expect "host name not in the certificate (127.1) -> 41" 41 "${st[@]}" ARCHIVE_MAIL_SMTP_HOST=127.1
  expect "nothing listening -> 40" 40 "${st[@]}" ARCHIVE_MAIL_SMTP_PORT="$(free_port)"
  expect "unknown host -> 40" 40 "${st[@]}" ARCHIVE_MAIL_SMTP_HOST=no-such-host.invalid
  expect "recipient refused -> 43" 43 ARCHIVE_MAIL_TRANSPORT=smtp ARCHIVE_MAIL_STARTTLS=no \
    ARCHIVE_MAIL_SMTP_HOST=127.0.0.1 ARCHIVE_MAIL_SMTP_PORT="$(val plain SMTP_PORT)" \
    ARCHIVE_MAIL_TO="ops@example.com, boss@example.org"
  expect "STARTTLS=no with a user -> 44" 44 "${st[@]}" ARCHIVE_MAIL_STARTTLS=no
  expect "server offers no STARTTLS -> 44" 44 ARCHIVE_MAIL_TRANSPORT=smtp \
    ARCHIVE_MAIL_SMTP_HOST=127.0.0.1 ARCHIVE_MAIL_SMTP_PORT="$(val plain SMTP_PORT)"
  expect "server wants STARTTLS, STARTTLS=no -> 44" 44 "${st[@]}" ARCHIVE_MAIL_STARTTLS=no ARCHIVE_MAIL_SMTP_USER=
  expect "smtps on a STARTTLS port -> 44" 44 "${st[@]}" ARCHIVE_MAIL_TRANSPORT=smtps
  expect "MTA fails -> 45" 45 ARCHIVE_MAIL_TRANSPORT=mta ARCHIVE_MAIL_SENDMAIL=/bin/false
  printf 'account default\nhost 127.0.0.1\nport %s\n' "$(free_port)" >"$tmp/bad-msmtprc"
  expect "MTA (msmtp) cannot connect -> 45" 45 ARCHIVE_MAIL_TRANSPORT=mta \
    ARCHIVE_MAIL_SENDMAIL="/usr/bin/msmtp -C $tmp/bad-msmtprc"
  check "MTA failure shows msmtp's own words" "stderr: $(tr '\n' '|' <"$tmp/stderr")" \
    grep -q '^msmtp: cannot connect to 127.0.0.1' "$tmp/stderr"
  local t0=$SECONDS
  expect "server never answers -> 46" 46 "${tls[@]}" ARCHIVE_MAIL_TRANSPORT=smtp ARCHIVE_MAIL_TIMEOUT=2
  check "timeout is kept (under 10 s)" "took $((SECONDS - t0)) s" test $((SECONDS - t0)) -lt 10
  expect "sendmail program missing -> 127" 127 ARCHIVE_MAIL_SENDMAIL="/nonexistent/sendmail -oi"
  expect "no recipient -> 2" 2 ARCHIVE_MAIL_TO=" , "
  expect "user without password file -> 2" 2 "${st[@]}" ARCHIVE_MAIL_SMTP_PASSWORD_FILE=
  expect "unknown transport -> 2" 2 ARCHIVE_MAIL_TRANSPORT=smtp+tls
  check "-h lists every input and exit code" "missing from mail.sh -h" usage_lists 0 1 2 40 41 42 43 44 45 46 127 \
    ARCHIVE_MAIL_{TO,FROM,SUBJECT,BODY_FILE,ATTACH,TRANSPORT,SENDMAIL,SMTP_HOST,SMTP_PORT,STARTTLS} \
    ARCHIVE_MAIL_{SMTP_USER,SMTP_PASSWORD_FILE,CA_FILE,TIMEOUT,WORK_DIR}

  # --- the secret: never in argv, muttrc 0600 and removed (a real send, then a hanging one)
  secret_check "secret (STARTTLS send)" "${st[@]}"
  secret_check "secret (hanging server)" "${st[@]}" ARCHIVE_MAIL_SMTP_PORT="$(val tls SMTP_PORT)" ARCHIVE_MAIL_TIMEOUT=2
  check "default work dir removed" "left in TMPDIR: $(ls -A "$tmp/tmpdir")" empty_dir "$tmp/tmpdir"
}

free_port() { # a loopback port nobody listens on
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

main "$@"
