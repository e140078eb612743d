#!/usr/bin/env bash
#
# msmtp-mta.sh - make msmtp a sendmail for tests, pointed at a mailpit.sh server.
#
# Usage: msmtp-mta.sh DIR [starttls|tls]
#   DIR is a directory started by "mailpit.sh start DIR MODE"; give the same MODE.
#   Writes DIR/msmtprc (0600: TLS verified against DIR's CA, AUTH as its user, the
#   password read from its password file by passwordeval, log in DIR/msmtp.log) and
#   prints the command to use as ARCHIVE_MAIL_SENDMAIL:
#     /usr/bin/msmtp -C DIR/msmtprc -oi
#   Nothing outside DIR changes (/usr/sbin/sendmail and ~/.msmtprc are left alone).
# Exit codes: 0 done; 2 usage or DIR/env missing; 127 msmtp not found.
set -euo pipefail
umask 077

die() {
  echo "msmtp-mta.sh: $2" >&2
  exit "$1"
}

main() {
  [[ $# -ge 1 && $# -le 2 && $1 != -h ]] || die 2 "usage: msmtp-mta.sh DIR [starttls|tls]"
  local dir=$1 mode=${2:-starttls} msmtp starttls=on
  case $mode in starttls) ;; tls) starttls=off ;; *) die 2 "unknown mode \"$mode\" (starttls or tls)" ;; esac
  msmtp=$(command -v msmtp) || die 127 "msmtp not found; install the msmtp package"
  [[ -f $dir/env ]] || die 2 "no $dir/env; run mailpit.sh start $dir $mode first"
  local SMTP_PORT="" SMTP_USER="" SMTP_PASSWORD_FILE="" CA_FILE=""
  # shellcheck source=/dev/null # written by mailpit.sh: KEY=VALUE lines
  . "$dir/env"
  [[ -n $SMTP_USER ]] || die 2 "the server in $dir has no user; start it in starttls or tls mode"
  cat >"$dir/msmtprc" <<EOF
defaults
tls on
tls_starttls $starttls
tls_trust_file $CA_FILE
logfile $dir/msmtp.log

account default
host 127.0.0.1
port $SMTP_PORT
auth on
user $SMTP_USER
passwordeval "head -n 1 $SMTP_PASSWORD_FILE"
EOF
  echo "$msmtp -C $dir/msmtprc -oi"
}

main "$@"
