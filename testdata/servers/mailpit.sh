#!/usr/bin/env bash
#
# mailpit.sh - start or stop a real SMTP server (mailpit) on loopback for tests.
#
# Usage:
#   mailpit.sh start DIR [starttls|tls|plain] [MAILPIT_FLAG...]
#   mailpit.sh stop DIR
#
# start: runs mailpit in the background on free 127.0.0.1 ports, all state in DIR:
#   starttls (default)  plain SMTP that requires STARTTLS, AUTH required
#   tls                 implicit TLS (SMTPS), AUTH required
#   plain               no TLS offered at all, no AUTH (for "no STARTTLS" tests)
#   Extra MAILPIT_FLAGs are passed to mailpit (e.g. --smtp-allowed-recipients RE).
#   The test CA and server certificate come from mkcert.sh DIR (DIR/ca.pem...).
#   Waits until SMTP and HTTP answer, then writes DIR/env (KEY=VALUE lines):
#     SMTP_PORT, HTTP_PORT, SMTP_USER, SMTP_PASSWORD_FILE, CA_FILE, PID
#   (SMTP_USER, SMTP_PASSWORD_FILE and CA_FILE are empty in plain mode).
#   The password file DIR/smtp-password (0600) holds the random password of user
#   "archive". The HTTP API is http://127.0.0.1:HTTP_PORT/api/v1/...
# stop: kills the mailpit whose PID is in DIR/env.
#
# Environment: MAILPIT (path of the binary; default: mailpit in PATH or in
#   $(go env GOPATH)/bin, installed with go install once if missing).
# Exit codes: 0 done; 2 usage; 1 mailpit missing or did not start.
set -euo pipefail
umask 077

readonly MAILPIT_MODULE=github.com/axllent/mailpit@v1.33.1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
  echo "mailpit.sh: $2" >&2
  exit "$1"
}

find_mailpit() {
  local gobin
  [[ -n ${MAILPIT:-} ]] && { echo "$MAILPIT"; return; }
  command -v mailpit && return
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || return 1
  gobin="$(go env GOPATH)/bin"
  [[ -x $gobin/mailpit ]] || go install "$MAILPIT_MODULE" >&2 || return 1
  echo "$gobin/mailpit"
}

# free_port prints a loopback TCP port nobody listens on (refused on connect).
free_port() {
  local port
  for _ in {1..50}; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  return 1
}

start() {
  local dir=$1 mode=${2:-starttls} bin smtp http pid
  shift $(($# < 2 ? $# : 2))
  case $mode in starttls | tls | plain) ;; *) die 2 "unknown mode \"$mode\" (starttls, tls or plain)" ;; esac
  bin=$(find_mailpit) || die 1 "mailpit not found and \"go install $MAILPIT_MODULE\" failed"
  mkdir -p "$dir"
  local args=(--database "$dir/mailpit.db" --log-file "$dir/mailpit.log"
    --disable-version-check --smtp-disable-rdns)
  local user="" pwfile="" ca=""
  if [[ $mode != plain ]]; then
    "$here/mkcert.sh" "$dir"
    ca=$dir/ca.pem
    user=archive pwfile=$dir/smtp-password
    # quotes, $, backtick, # and backslash prove the password is never re-parsed
    # (no whitespace: mailpit splits its auth file on whitespace)
    printf '%s\n' "$(openssl rand -hex 12)q'\"\$\`#\\x" >"$pwfile"
    printf '%s:%s\n' "$user" "$(head -n 1 "$pwfile")" >"$dir/smtp-auth"
    args+=(--smtp-auth-file "$dir/smtp-auth"
      --smtp-tls-cert "$dir/server.pem" --smtp-tls-key "$dir/server.key")
    if [[ $mode == tls ]]; then args+=(--smtp-require-tls); else args+=(--smtp-require-starttls); fi
  fi
  for _ in 1 2 3; do
    { smtp=$(free_port) && http=$(free_port); } || die 1 "no free loopback port found"
    "$bin" "${args[@]}" --smtp "127.0.0.1:$smtp" --listen "127.0.0.1:$http" "$@" \
      </dev/null >>"$dir/mailpit.out" 2>&1 &
    pid=$!
    for _ in {1..100}; do
      kill -0 "$pid" 2>/dev/null || break
      if (exec 3<>"/dev/tcp/127.0.0.1/$smtp") 2>/dev/null &&
        curl -fsS -o /dev/null "http://127.0.0.1:$http/readyz" 2>/dev/null; then
        printf '%s\n' "SMTP_PORT=$smtp" "HTTP_PORT=$http" "SMTP_USER=$user" \
          "SMTP_PASSWORD_FILE=$pwfile" "CA_FILE=$ca" "PID=$pid" >"$dir/env"
        return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  tail -n 5 "$dir/mailpit.log" "$dir/mailpit.out" >&2 2>/dev/null || true
  die 1 "mailpit did not start; see $dir/mailpit.log"
}

stop() {
  local dir=$1 pid
  [[ -f $dir/env ]] || return 0
  pid=$(sed -n 's/^PID=//p' "$dir/env")
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in {1..50}; do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

main() {
  case ${1:-} in
    start) [[ $# -ge 2 ]] || die 2 "usage: mailpit.sh start DIR [starttls|tls|plain] [MAILPIT_FLAG...]"
      shift; start "$@" ;;
    stop) [[ $# -eq 2 ]] || die 2 "usage: mailpit.sh stop DIR"
      stop "$2" ;;
    *) die 2 "usage: mailpit.sh start DIR [starttls|tls|plain] [MAILPIT_FLAG...] | stop DIR" ;;
  esac
}

main "$@"
