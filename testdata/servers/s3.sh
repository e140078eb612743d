#!/usr/bin/env bash
# s3.sh start DIR [versitygw|gofakes3] | stop DIR: a throwaway S3-compatible service over HTTPS on
# a free loopback port, with the certificate of mkcert.sh DIR/tls, one account (a fresh random
# key id and secret) and one bucket, "archives", with an empty folder "nightly/" in it.
#   versitygw (default)  the Versity S3 gateway, posix backend: objects are files in DIR/data;
#                        it checks x-amz-checksum-sha256 and answers BadDigest on a mismatch;
#                        path-style, and virtual-host addressing at https://archives.localhost:PORT
#   gofakes3             gofakes3 (rclone's S3 server library), fs backend, behind nginx
#                        terminating TLS, as it is often run; it keeps no checksum
# Writes DIR/env (KEY=VALUE): PORT ENDPOINT REGION BUCKET PREFIX ACCESS_KEY_FILE CA_FILE DEST (the
# folder on disk behind the prefix) PID.
# Needs versitygw or gofakes3 in PATH or $(go env GOPATH)/bin (testdata/deps.sh test), curl, and
# nginx for gofakes3.
set -euo pipefail
umask 077
# shellcheck source=testdata/servers/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATH=$PATH:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin

start() {
  local dir=$1 kind=$2 port inner id secret
  # A fresh service each time: its data and its key of an earlier start would not match.
  rm -rf -- "$dir/data"
  mkdir -p -- "$dir/data"
  dir=$(cd -- "$dir" && pwd)
  # archives.localhost: the bucket's virtual host (curl takes every *.localhost for loopback).
  "$here/mkcert.sh" "$dir/tls" archives.localhost
  port=$(free_port)
  id=AK$(openssl rand -hex 8 | tr a-f A-F) secret=$(openssl rand -base64 30 | tr -d '\n')
  printf '%s\n%s\n' "$id" "$secret" >"$dir/access-key"
  case $kind in
    versitygw)
      # The secret reaches it by its environment, never its command line.
      ROOT_ACCESS_KEY=$id ROOT_SECRET_KEY=$secret setsid versitygw --port "127.0.0.1:$port" --cert "$dir/tls/server.pem" \
        --key "$dir/tls/server.key" --virtual-domain localhost posix "$dir/data" </dev/null >>"$dir/server.log" 2>&1 &
      echo "$!" >"$dir/server.pid"
      ;;
    gofakes3)
      inner=$(free_port)
      AWS_ACCESS_KEY_ID=$id AWS_SECRET_ACCESS_KEY=$secret setsid gofakes3 -host "127.0.0.1:$inner" -backend fs \
        -fs.path "$dir/data" -fs.create -quiet </dev/null >>"$dir/server.log" 2>&1 &
      echo "$!" >"$dir/server.pid"
      mkdir -p -- "$dir/nginx"
      cat >"$dir/nginx/nginx.conf" <<CFG
daemon off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log info;
events { worker_connections 64; }
http {
  access_log $dir/nginx/access.log;
  client_body_temp_path $dir/nginx;
  proxy_temp_path $dir/nginx;
  fastcgi_temp_path $dir/nginx;
  uwsgi_temp_path $dir/nginx;
  scgi_temp_path $dir/nginx;
  client_max_body_size 0;
  proxy_request_buffering off;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/tls/server.pem;
    ssl_certificate_key $dir/tls/server.key;
    location / {
      proxy_pass http://127.0.0.1:$inner;
      proxy_set_header Host \$http_host;
    }
  }
}
CFG
      setsid nginx -e "$dir/nginx/error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" </dev/null >>"$dir/nginx/out" 2>&1 &
      echo "$!" >"$dir/nginx.pid"
      wait_port "$inner"
      ;;
    *) echo "s3.sh: unknown kind \"$kind\" (versitygw or gofakes3)" >&2 && exit 2 ;;
  esac
  wait_port "$port"
  # The bucket, made through the service itself (so that it keeps its own metadata of it).
  local i ok=no
  for ((i = 0; i < 50; i++)); do
    if curl -q -sSf --cacert "$dir/tls/ca.pem" --aws-sigv4 "aws:amz:us-east-1:s3" -K /dev/fd/3 -X PUT \
      -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
      "https://127.0.0.1:$port/archives" -o /dev/null 3<<<"user = \"$id:$secret\"" 2>>"$dir/server.log"; then
      ok=yes && break
    fi
    sleep 0.1
  done
  [[ $ok == yes ]] || { echo "s3.sh: $kind did not start; see $dir/server.log" >&2 && exit 1; }
  local dest=$dir/data/archives/nightly
  [[ $kind == gofakes3 ]] && dest=$dir/data/buckets/archives/nightly
  mkdir -p -- "$dest"
  cat >"$dir/env" <<ENV
PORT=$port
ENDPOINT=https://127.0.0.1:$port
REGION=us-east-1
BUCKET=archives
PREFIX=nightly/
ACCESS_KEY_FILE=$dir/access-key
CA_FILE=$dir/tls/ca.pem
DEST=$dest
PID=$(cat "$dir/server.pid")
ENV
}

stop() {
  local f pid
  for f in nginx.pid server.pid; do
    pid=$(cat -- "$1/$f" 2>/dev/null) || continue
    kill -- "-$pid" 2>/dev/null || true
    rm -f -- "$1/$f"
  done
}

case ${1:-} in
  start) start "${2:?usage: s3.sh start DIR [versitygw|gofakes3]}" "${3:-versitygw}" ;;
  stop) stop "${2:?usage: s3.sh stop DIR}" ;;
  *) echo "usage: s3.sh start|stop DIR [versitygw|gofakes3]" >&2; exit 2 ;;
esac
