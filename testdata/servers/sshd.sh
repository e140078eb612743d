#!/usr/bin/env bash
# sshd.sh start DIR | stop DIR: a throwaway OpenSSH server on a free loopback port.
# Everything lives in DIR: host key, client key, known_hosts, the archive folder DIR/archives.
# Writes DIR/env (KEY=VALUE): PORT USER IDENTITY_FILE KNOWN_HOSTS DEST PID.
# As root it logs in as the unprivileged user "archivetest" (created when missing), so that
# "permission denied" on the server can be tested; otherwise as the current user.
set -euo pipefail
umask 022

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 user
  mkdir -p -- "$dir"
  dir=$(cd -- "$dir" && pwd)
  chmod 755 -- "$dir"
  user=$(id -un)
  if [[ $(id -u) == 0 ]]; then
    user=archivetest
    id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/archivetest --shell /bin/sh --password '*' "$user"
    # A locked account ("!") is refused by sshd; "*" only forbids password logins.
    usermod --password '*' "$user"
    mkdir -p /run/sshd
  fi
  rm -f -- "$dir/host_key" "$dir/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  cp -- "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 644 -- "$dir/authorized_keys"
  mkdir -p -- "$dir/archives"
  chown -- "$user" "$dir/archives"
  local port
  port=$(free_port)
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
  cat >"$dir/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CFG
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $dir/sshd.pid ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  cat >"$dir/env" <<ENV
PORT=$port
USER=$user
IDENTITY_FILE=$dir/id_ed25519
KNOWN_HOSTS=$dir/known_hosts
DEST=$dir/archives
PID=$(cat "$dir/sshd.pid")
ENV
}

stop() {
  local pid
  pid=$(cat -- "$1/sshd.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
}

case ${1:-} in
  start | stop) "$1" "${2:?usage: sshd.sh start|stop DIR}" ;;
  *) echo "usage: sshd.sh start|stop DIR" >&2; exit 2 ;;
esac
