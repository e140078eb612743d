#!/usr/bin/env bash
# rclone-webdav.sh start DIR | stop DIR: a second WebDAV server implementation, rclone's (Go, its
# own WebDAV code), over HTTPS on a free loopback port with the certificate of mkcert.sh DIR/tls
# and basic auth for user "archive" (a fresh random password). The collection /my%20archives/ is
# the folder DIR/www/my archives. Writes DIR/env (KEY=VALUE): PORT USER PASSWORD_FILE CA_FILE
# DEST URL PID.
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

start() {
  local dir=$1 port pw i
  mkdir -p -- "$dir/www/my archives"
  dir=$(cd -- "$dir" && pwd)
  pw=$(openssl rand -hex 12)
  (umask 077 && printf '%s\n' "$pw" >"$dir/password")
  "$here/mkcert.sh" "$dir/tls"
  port=$(free_port)
  # The password reaches rclone through its environment, not its command line.
  # No directory cache: the tests change files behind the server's back, as a failing disk would.
  RCLONE_PASS=$pw rclone serve webdav "$dir/www" --config /dev/null --addr "127.0.0.1:$port" --dir-cache-time 0s \
    --cert "$dir/tls/server.pem" --key "$dir/tls/server.key" --user archive >"$dir/rclone.log" 2>&1 &
  echo $! >"$dir/rclone.pid"
  wait_port "$port"
  cat >"$dir/env" <<ENV
PORT=$port
USER=archive
PASSWORD_FILE=$dir/password
CA_FILE=$dir/tls/ca.pem
DEST=$dir/www/my archives
URL=https://127.0.0.1:$port/my%20archives/
PID=$(cat "$dir/rclone.pid")
ENV
}

stop() { stop_pid "$1/rclone.pid"; }

case ${1:-} in
  start | stop) "$1" "${2:?usage: rclone-webdav.sh start|stop DIR}" ;;
  *) echo "usage: rclone-webdav.sh start|stop DIR" >&2; exit 2 ;;
esac
