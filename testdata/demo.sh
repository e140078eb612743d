#!/usr/bin/env bash
# demo.sh: the whole job on this machine, with nothing outside it: a local HTTPS server publishes a
# generated dump zip, a local sshd is the archive server. Runs archive twice (an archive, then an
# unchanged skip) and shows the log and the server's folder. make demo installs what it lacks first
# (testdata/deps.sh demo).
set -euo pipefail
cd "$(dirname -- "$0")/.."

go build -o archive .
go build -o build/httpsd ./testdata/httpsd

demo=$(mktemp -d /tmp/archive-demo.XXXXXX)
chmod 755 "$demo"
cleanup() {
  testdata/servers/sshd.sh stop "$demo/sshd"
  [[ -n ${web:-} ]] && kill "$web" 2>/dev/null
  true
}
trap cleanup EXIT

testdata/servers/mkcert.sh "$demo/tls"
mkdir -p "$demo/www/exports"
{
  echo "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, created DATE);"
  for i in $(seq 1 5000); do echo "INSERT INTO customers VALUES ($i, 'customer $i', '2026-01-$((i % 28 + 1))');"; done
} >"$demo/dump.sql"
(cd "$demo" && zip -q www/exports/dump.zip dump.sql)

web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
build/httpsd -addr "127.0.0.1:$web_port" -dir "$demo/www" -cert "$demo/tls/server.pem" -key "$demo/tls/server.key" &
web=$!
testdata/servers/sshd.sh start "$demo/sshd"
# shellcheck source=/dev/null
. "$demo/sshd/env"
SSH_PORT=${PORT:?}

cat >"$demo/archive.conf" <<CONF
[source]
url = https://127.0.0.1:$web_port/exports/dump.zip
expected_file = dump.sql
ca_file = tls/ca.pem
retry_delay = 1

[archive]
work_dir = work
state_dir = state

[destination]
protocol = sftp
host = 127.0.0.1
port = $SSH_PORT
user = $USER
path = $DEST
identity_file = sshd/id_ed25519
known_hosts = sshd/known_hosts

[log]
file = archive.log
CONF

chmod 600 "$demo/archive.conf"
sleep 0.5
echo "== first run: the dump is new, it is archived"
./archive -c "$demo/archive.conf" || true
echo
echo "== second run: the same dump, nothing to upload"
./archive -c "$demo/archive.conf" || true
echo
echo "== the archive server's folder ($DEST)"
ls -l "$DEST"
echo
echo "== inside the archive"
tar -tzvf "$DEST"/*.tgz
echo
echo "The conf and the log are in $demo (archive.conf, archive.log)."
