#!/usr/bin/env bash
# demo.sh: the whole job on this machine, with nothing outside it: a local HTTPS server publishes a
# generated dump zip, a local sshd is the archive server, and, when mailpit is installed (make
# deps), a local SMTP server takes the reports. Four nights: an archive, an unchanged skip, a
# source that publishes a wrong zip (the run fails, the archive on the server stays), then a
# restore of the newest archive. make demo installs what it lacks first (testdata/deps.sh demo).
set -euo pipefail
cd "$(dirname -- "$0")/.."

go build -o archive .
go build -o build/httpsd ./testdata/httpsd

demo=$(mktemp -d /tmp/archive-demo.XXXXXX)
chmod 755 "$demo"
cleanup() {
  testdata/servers/sshd.sh stop "$demo/sshd"
  [[ ! -f $demo/mailpit/env ]] || testdata/servers/mailpit.sh stop "$demo/mailpit"
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
mail=no
if command -v mailpit >/dev/null || [[ -x $(go env GOPATH)/bin/mailpit ]]; then
  testdata/servers/mailpit.sh start "$demo/mailpit" starttls >/dev/null
  # shellcheck source=/dev/null
  . "$demo/mailpit/env"
  cat >>"$demo/archive.conf" <<CONF

[mail]
send = always
to = ops@example.org
transport = smtp
smtp_host = 127.0.0.1
smtp_port = ${SMTP_PORT:?}
smtp_user = ${SMTP_USER:?}
smtp_password_file = ${SMTP_PASSWORD_FILE:?}
ca_file = ${CA_FILE:?}
CONF
  mail=yes
fi

chmod 600 "$demo/archive.conf"
sleep 0.5
echo "== first night: the dump is new, it is archived"
./archive -c "$demo/archive.conf" || true
echo
echo "== second night: the same dump, nothing to upload"
./archive -c "$demo/archive.conf" || true
echo
echo "== the archive server's folder ($DEST)"
ls -l "$DEST"
echo
echo "== inside the archive"
tar -tzvf "$DEST"/*.tgz
echo
echo "== third night: the source publishes a zip without dump.sql; the archive on the server stays"
(cd "$demo" && echo "maintenance" >readme.txt && rm -f www/exports/dump.zip && zip -q www/exports/dump.zip readme.txt)
./archive -c "$demo/archive.conf" || echo "(exit $?)"
echo "== what an operator greps the next morning"
grep 'FAILED' "$demo/archive.log" | cut -c1-240
echo
if [[ $mail == yes ]]; then
  echo "== the reports mailed (subjects, from the SMTP server)"
  curl -s "http://127.0.0.1:${HTTP_PORT:?}/api/v1/messages" | python3 -c 'import json, sys; [print("  " + m["Subject"]) for m in reversed(json.load(sys.stdin)["messages"])]'
  echo
fi
echo "== restore the newest archive this host recorded, proven by its sha256"
./archive -c "$demo/archive.conf" restore --latest --to "$demo/restored"
cmp "$demo/dump.sql" "$demo/restored/dump.sql" && echo "the restored dump is byte for byte the one published"
echo
echo "The conf and the log are in $demo (archive.conf, archive.log)."
