#!/usr/bin/env bash
# vsftpd.sh start DIR [plain] | stop DIR: a throwaway FTPS server (vsftpd) on a free loopback port.
# Explicit TLS (AUTH TLS) is required for login and data, with the certificate of mkcert.sh DIR/tls;
# "plain" starts it without TLS, to test a server that does not offer TLS.
# Logs in the local user "archiveftp" (created when missing, root only); its random password is
# made once and kept in /var/lib/archiveftp/password, so several servers can run at once. Its FTP
# login directory is DIR/ftp, the archive folder DIR/ftp/my archives.
# Writes DIR/env (KEY=VALUE): PORT USER PASSWORD_FILE CA_FILE DEST FOLDER PID
# (FOLDER: the ARCHIVE_DEST_PATH to use, relative to the login directory).
# Needs root (vsftpd checks passwords through PAM, service "vsftpd" of the Debian package).
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# free_ports N: the first of N consecutive loopback ports that nobody listens on.
free_ports() {
  python3 -c '
import socket, random, sys
n = int(sys.argv[1])
while True:
    base = random.randrange(20000, 60000 - n)
    try:
        for p in range(base, base + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
    except OSError:
        continue
    print(base); break' "$1"
}

start() {
  local dir=$1 mode=${2:-tls} user=archiveftp port pw
  [[ $(id -u) == 0 ]] || { echo "vsftpd.sh: must run as root" >&2; exit 1; }
  mkdir -p -- "$dir"
  dir=$(cd -- "$dir" && pwd)
  chmod 755 -- "$dir"
  # A login shell listed in /etc/shells: the vsftpd PAM service requires one (pam_shells).
  id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --home-dir "/var/lib/$user" --shell /bin/sh "$user"
  mkdir -p -- "/var/lib/$user"
  if [[ ! -s /var/lib/$user/password ]]; then
    (umask 077 && printf '%s "q\\ %%\n' "$(openssl rand -hex 12)" >"/var/lib/$user/password")
  fi
  pw=$(cat "/var/lib/$user/password")
  printf '%s:%s\n' "$user" "$pw" | chpasswd
  install -m 600 -- "/var/lib/$user/password" "$dir/password"
  "$here/mkcert.sh" "$dir/tls"
  mkdir -p -- "$dir/empty" "$dir/ftp/my archives"
  chown -- "$user" "$dir/ftp" "$dir/ftp/my archives"
  port=$(free_ports 11)
  cat >"$dir/vsftpd.conf" <<CFG
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=077
local_root=$dir/ftp
pam_service_name=vsftpd
secure_chroot_dir=$dir/empty
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$((port + 1))
pasv_max_port=$((port + 10))
vsftpd_log_file=$dir/vsftpd.log
xferlog_enable=YES
log_ftp_protocol=YES
ssl_enable=$([[ $mode == plain ]] && echo NO || echo YES)
rsa_cert_file=$dir/tls/server.pem
rsa_private_key_file=$dir/tls/server.key
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=NO
ssl_ciphers=HIGH
CFG
  # Its own session (setsid), so that stop can end the listener with anything it started.
  setsid /usr/sbin/vsftpd "$dir/vsftpd.conf" </dev/null >>"$dir/vsftpd.out" 2>&1 &
  echo "$!" >"$dir/vsftpd.pid"
  wait_port "$port"
  cat >"$dir/env" <<ENV
PORT=$port
USER=$user
PASSWORD_FILE=$dir/password
CA_FILE=$dir/tls/ca.pem
DEST=$dir/ftp/my archives
FOLDER=my archives
PID=$(cat "$dir/vsftpd.pid")
ENV
}

stop() {
  local pid s
  pid=$(cat -- "$1/vsftpd.pid" 2>/dev/null) || return 0
  # Each connection is a session of its own (vsftpd calls setsid) whose processes ignore SIGTERM:
  # kill those, then end the listener.
  for s in $(pgrep -P "$pid"); do kill -KILL -- "-$s" 2>/dev/null || true; done
  kill -- "-$pid" 2>/dev/null || true
  rm -f -- "$1/vsftpd.pid"
}

case ${1:-} in
  start) start "${2:?usage: vsftpd.sh start DIR [plain]}" "${3:-tls}" ;;
  stop) stop "${2:?usage: vsftpd.sh stop DIR}" ;;
  *) echo "usage: vsftpd.sh start DIR [plain] | stop DIR" >&2; exit 2 ;;
esac
