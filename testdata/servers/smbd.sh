#!/usr/bin/env bash
# smbd.sh start DIR [strict] | stop DIR: a throwaway SMB server (Samba smbd) on a free loopback
# port. Share "archives" is the folder DIR/share; the archive folder inside it is "my archives".
# strict: as hardened servers are set up: the share is named "db archives" (a space), signing is
# mandatory and only SMB3 is spoken.
# Logs in the Unix user "archivesmb" (created when missing, root only, no Unix password) with a
# fresh random Samba password; every Samba state file lives in DIR. Servers SMB2 and SMB3.
# Writes DIR/env (KEY=VALUE): PORT USER PASSWORD_FILE SHARE DEST FOLDER PID
# (FOLDER: the ARCHIVE_DEST_PATH to use inside the share).
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"


start() {
  local dir=$1 mode=${2:-plain} user=archivesmb port pw d share=archives minproto=SMB2_10 signing=auto
  [[ $(id -u) == 0 ]] || { echo "smbd.sh: must run as root" >&2; exit 1; }
  mkdir -p -- "$dir"
  dir=$(cd -- "$dir" && pwd)
  chmod 755 -- "$dir"
  id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
  for d in lock state cache private pid ncalrpc binddns log; do mkdir -p -- "$dir/samba/$d"; done
  chmod 700 -- "$dir/samba/private"
  mkdir -p -- "$dir/share/my archives"
  chown -- "$user" "$dir/share" "$dir/share/my archives"
  [[ $mode == strict ]] && share="db archives" minproto=SMB3 signing=mandatory
  port=$(free_port)
  cat >"$dir/smb.conf" <<CFG
[global]
  server role = standalone server
  workgroup = ARCHIVETEST
  netbios name = ARCHIVETEST
  smb ports = $port
  interfaces = lo
  bind interfaces only = yes
  disable netbios = yes
  server min protocol = $minproto
  server signing = $signing
  passdb backend = tdbsam:$dir/samba/private/passdb.tdb
  lock directory = $dir/samba/lock
  state directory = $dir/samba/state
  cache directory = $dir/samba/cache
  private dir = $dir/samba/private
  pid directory = $dir/samba/pid
  ncalrpc dir = $dir/samba/ncalrpc
  binddns dir = $dir/samba/binddns
  log file = $dir/samba/log/%m.log
  log level = 1
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  usershare max shares = 0
  map to guest = never
[$share]
  path = $dir/share
  read only = no
  valid users = $user
CFG
  pw="$(openssl rand -hex 12) \"q\\ %"
  (umask 077 && printf '%s\n' "$pw" >"$dir/password")
  printf '%s\n%s\n' "$pw" "$pw" | smbpasswd -c "$dir/smb.conf" -a -s "$user" >"$dir/smbpasswd.log" 2>&1
  # Its own session (setsid): stop ends the listener and every per-connection smbd at once.
  setsid smbd --foreground --no-process-group -s "$dir/smb.conf" </dev/null >>"$dir/smbd.out" 2>&1 &
  echo "$!" >"$dir/smbd.pid"
  wait_port "$port" 100
  cat >"$dir/env" <<ENV
PORT=$port
USER=$user
PASSWORD_FILE=$dir/password
SHARE=$share
DEST=$dir/share/my archives
FOLDER=my archives
PID=$(cat "$dir/smbd.pid")
ENV
}

stop() {
  local pid
  pid=$(cat -- "$1/smbd.pid" 2>/dev/null) || return 0
  kill -- "-$pid" 2>/dev/null || true
  rm -f -- "$1/smbd.pid"
}

case ${1:-} in
  start) start "${2:?usage: smbd.sh start DIR [strict]}" "${3:-plain}" ;;
  stop) stop "${2:?usage: smbd.sh stop DIR}" ;;
  *) echo "usage: smbd.sh start|stop DIR" >&2; exit 2 ;;
esac
