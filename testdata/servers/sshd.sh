#!/usr/bin/env bash
# sshd.sh start DIR [sftp-only] | stop DIR: a throwaway OpenSSH server on a free loopback port.
# Everything lives in DIR: host key, client key, known_hosts, the archive folder DIR/archives.
# Writes DIR/env (KEY=VALUE): PORT USER IDENTITY_FILE KNOWN_HOSTS DEST SERVER_PATH PID; DEST is the
# archive folder on this machine, SERVER_PATH the same folder as the account sees it.
# As root it logs in as the unprivileged user "archivetest" (created when missing), so that
# "permission denied" on the server can be tested; otherwise as the current user.
# sftp-only (root only): the account most archive servers have, "archivesftp", chrooted in a
# root-owned folder under /srv with "ForceCommand internal-sftp": no shell, no ssh command, the
# archive folder is /archives inside the chroot.
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"


start() {
  local dir=$1 mode=${2:-shell} user chroot="" dest path
  mkdir -p -- "$dir"
  dir=$(cd -- "$dir" && pwd)
  chmod 755 -- "$dir"
  user=$(id -un)
  if [[ $(id -u) == 0 ]]; then
    user=archivetest
    [[ $mode == sftp-only ]] && user=archivesftp
    id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --home-dir "/var/lib/$user" --shell /bin/sh --password '*' "$user"
    # A locked account ("!") is refused by sshd; "*" only forbids password logins.
    usermod --password '*' "$user"
    mkdir -p /run/sshd
  elif [[ $mode == sftp-only ]]; then
    echo "sshd.sh: sftp-only needs root (a chroot)" >&2
    exit 1
  fi
  dest=$dir/archives path=$dir/archives
  if [[ $mode == sftp-only ]]; then
    # sshd wants every folder of a chroot's path owned by root and writable by no one else.
    chroot=$(mktemp -d /srv/archive-sftp-chroot.XXXXXX)
    chmod 755 -- "$chroot"
    echo "$chroot" >"$dir/chroot"
    dest=$chroot/archives path=/archives
  fi
  rm -f -- "$dir/host_key" "$dir/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  cp -- "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 644 -- "$dir/authorized_keys"
  mkdir -p -- "$dest"
  chown -- "$user" "$dest"
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
  if [[ -n $chroot ]]; then
    printf 'Match User %s\n  ChrootDirectory %s\n  ForceCommand internal-sftp\n  AllowTcpForwarding no\n' "$user" "$chroot" >>"$dir/sshd_config"
  fi
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
DEST=$dest
SERVER_PATH=$path
PID=$(cat "$dir/sshd.pid")
ENV
}

stop() {
  local pid chroot
  pid=$(cat -- "$1/sshd.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  chroot=$(cat -- "$1/chroot" 2>/dev/null) || return 0
  [[ $chroot == /srv/archive-sftp-chroot.* ]] && rm -rf -- "$chroot"
}

case ${1:-} in
  start) start "${2:?usage: sshd.sh start DIR [sftp-only]}" "${3:-shell}" ;;
  stop) stop "${2:?usage: sshd.sh stop DIR}" ;;
  *) echo "usage: sshd.sh start DIR [sftp-only] | stop DIR" >&2; exit 2 ;;
esac
