#!/usr/bin/env bash
# mkcert.sh DIR [NAME...]: a throwaway test CA and a server certificate for the loopback names.
# Writes DIR/ca.pem DIR/ca.key DIR/server.pem DIR/server.key (SANs: 127.0.0.1, ::1, localhost,
# and each NAME, such as a bucket's virtual host archives.localhost).
# Reuses them when DIR/server.pem already exists.
set -euo pipefail
umask 077
dir=${1:?usage: mkcert.sh DIR}
mkdir -p -- "$dir"
[[ -s $dir/server.pem ]] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=archive test CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
sans=IP:127.0.0.1,IP:::1,DNS:localhost
for name in "${@:2}"; do sans+=,DNS:$name; done
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$sans" >"$dir/ext.cnf"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 3650 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null
rm -f -- "$dir/server.csr" "$dir/ext.cnf" "$dir/ca.srl"
chmod 644 "$dir/ca.pem" "$dir/server.pem"
