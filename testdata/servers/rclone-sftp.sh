#!/usr/bin/env bash
# rclone-sftp.sh start DIR | stop DIR: a second SFTP server implementation, rclone's (Go, its own
# SFTP code, no shell at all), on a free loopback port, serving DIR/archives. Key login only.
# Writes DIR/env (KEY=VALUE): PORT USER IDENTITY_FILE KNOWN_HOSTS DEST SERVER_PATH PID.
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

start() {
  local dir=$1 port i
  mkdir -p -- "$dir/archives"
  dir=$(cd -- "$dir" && pwd)
  rm -f -- "$dir/host_key" "$dir/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  cp -- "$dir/id_ed25519.pub" "$dir/authorized_keys"
  port=$(free_port)
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
  # No directory cache: the tests change files behind the server's back, as a failing disk would.
  rclone serve sftp "$dir/archives" --config /dev/null --addr "127.0.0.1:$port" --key "$dir/host_key" --dir-cache-time 0s \
    --authorized-keys "$dir/authorized_keys" --user archive >"$dir/rclone.log" 2>&1 &
  echo $! >"$dir/rclone.pid"
  wait_port "$port"
  cat >"$dir/env" <<ENV
PORT=$port
USER=archive
IDENTITY_FILE=$dir/id_ed25519
KNOWN_HOSTS=$dir/known_hosts
DEST=$dir/archives
SERVER_PATH=.
PID=$(cat "$dir/rclone.pid")
ENV
}

stop() { stop_pid "$1/rclone.pid"; }

case ${1:-} in
  start | stop) "$1" "${2:?usage: rclone-sftp.sh start|stop DIR}" ;;
  *) echo "usage: rclone-sftp.sh start|stop DIR" >&2; exit 2 ;;
esac
