#!/usr/bin/env bash
# pureftpd.sh start DIR | stop DIR: a second FTPS server implementation, Pure-FTPd, on a free
# loopback port, set up as hardened servers are: TLS required for the login and the data
# (--tls=2), and no name starting with a dot may be written (--prohibitdotfileswrite). One
# virtual user "archive" (a fresh random password, mapped to the Unix user "archiveftp"), whose
# login directory is DIR/ftp; the archive folder DIR/ftp/my archives.
# Debian's pure-ftpd package conflicts with vsftpd's (both are "ftp-server"), so the binary comes
# from the package unpacked by testdata/deps.sh into /var/cache/archive-test/pure-ftpd, unless
# pure-ftpd is installed. Needs root (the login maps to a Unix user).
# Each login takes Pure-FTPd about 3.5 s here: its tests are the slow ones.
# Writes DIR/env (KEY=VALUE): PORT USER PASSWORD_FILE CA_FILE DEST FOLDER PID.
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unpacked=/var/cache/archive-test/pure-ftpd

start() {
  local dir=$1 user=archiveftp port bin pw i
  [[ $(id -u) == 0 ]] || { echo "pureftpd.sh: must run as root" >&2; exit 1; }
  bin=$(command -v pure-ftpd || echo "$unpacked/usr/sbin/pure-ftpd")
  [[ -x $bin ]] || { echo "pureftpd.sh: no pure-ftpd (testdata/deps.sh test unpacks it)" >&2; exit 1; }
  mkdir -p -- "$dir/ftp/my archives"
  dir=$(cd -- "$dir" && pwd)
  id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --home-dir "/var/lib/$user" --shell /bin/sh "$user"
  chown -- "$user" "$dir/ftp" "$dir/ftp/my archives"
  "$here/mkcert.sh" "$dir/tls"
  cat "$dir/tls/server.key" "$dir/tls/server.pem" >"$dir/tls/both.pem"
  pw=$(openssl rand -hex 12)
  (umask 077 && printf '%s\n' "$pw" >"$dir/password")
  printf '%s\n%s\n' "$pw" "$pw" | "$(dirname -- "$bin")/../bin/pure-pw" useradd archive -u "$user" -d "$dir/ftp" \
    -f "$dir/pureftpd.passwd" -m -F "$dir/pureftpd.pdb" >/dev/null
  port=$(free_port)
  "$bin" --bind "127.0.0.1,$port" --login "puredb:$dir/pureftpd.pdb" --noanonymous --tls 2 \
    --certfile "$dir/tls/both.pem" --passiveportrange "$((port + 1)):$((port + 40))" --prohibitdotfileswrite --dontresolve \
    >"$dir/pureftpd.log" 2>&1 &
  echo $! >"$dir/pureftpd.pid"
  wait_port "$port"
  cat >"$dir/env" <<ENV
PORT=$port
USER=archive
PASSWORD_FILE=$dir/password
CA_FILE=$dir/tls/ca.pem
DEST=$dir/ftp/my archives
FOLDER=my archives
PID=$(cat "$dir/pureftpd.pid")
ENV
}

stop() { stop_pid "$1/pureftpd.pid"; }

case ${1:-} in
  start | stop) "$1" "${2:?usage: pureftpd.sh start|stop DIR}" ;;
  *) echo "usage: pureftpd.sh start|stop DIR" >&2; exit 2 ;;
esac
