#!/usr/bin/env bash
# webdav.sh start DIR | stop DIR: a throwaway WebDAV server (nginx + dav-ext) over HTTPS on a free
# loopback port, with the certificate of mkcert.sh DIR/tls and basic auth for user "archive"
# (a fresh random password). The collection /dav/my%20archives/ is the folder DIR/www/dav/my archives.
# Writes DIR/env (KEY=VALUE): PORT USER PASSWORD_FILE CA_FILE DEST URL PID.
# Needs nginx and libnginx-mod-http-dav-ext; as root the workers run as www-data.
set -euo pipefail
umask 022
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)


start() {
  local dir=$1 port pw worker=
  mkdir -p -- "$dir"
  dir=$(cd -- "$dir" && pwd)
  chmod 755 -- "$dir"
  pw="$(openssl rand -hex 12) \"q\\ %"
  (umask 077 && printf '%s\n' "$pw" >"$dir/password")
  printf 'archive:%s\n' "$(openssl passwd -apr1 -stdin <"$dir/password")" >"$dir/htpasswd"
  "$here/mkcert.sh" "$dir/tls"
  mkdir -p -- "$dir/www/dav/my archives" "$dir/body"
  if [[ $(id -u) == 0 ]]; then
    worker="user www-data;"
    chown www-data -- "$dir/www/dav" "$dir/www/dav/my archives" "$dir/body"
  fi
  port=$(free_port)
  cat >"$dir/nginx.conf" <<CFG
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
$worker
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 64; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/body;
  fastcgi_temp_path $dir/body;
  uwsgi_temp_path $dir/body;
  scgi_temp_path $dir/body;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/tls/server.pem;
    ssl_certificate_key $dir/tls/server.key;
    root $dir/www;
    location /dav/ {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path off;
      dav_access user:rw;
      auth_basic "archive";
      auth_basic_user_file $dir/htpasswd;
    }
  }
}
CFG
  # Its own session (setsid): stop ends the master and its workers together.
  setsid nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" </dev/null >>"$dir/nginx.out" 2>&1 &
  echo "$!" >"$dir/master.pid"
  wait_port "$port"
  cat >"$dir/env" <<ENV
PORT=$port
USER=archive
PASSWORD_FILE=$dir/password
CA_FILE=$dir/tls/ca.pem
DEST=$dir/www/dav/my archives
URL=https://127.0.0.1:$port/dav/my%20archives/
PID=$(cat "$dir/master.pid")
ENV
}

stop() {
  local pid
  pid=$(cat -- "$1/master.pid" 2>/dev/null) || return 0
  kill -- "-$pid" 2>/dev/null || true
  rm -f -- "$1/master.pid"
}

case ${1:-} in
  start | stop) "$1" "${2:?usage: webdav.sh start|stop DIR}" ;;
  *) echo "usage: webdav.sh start|stop DIR" >&2; exit 2 ;;
esac
