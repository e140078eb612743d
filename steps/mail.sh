#!/usr/bin/env bash
#
# mail.sh - send one plain-text mail with mutt; with no body file, a test mail.
#
# Inputs (environment; no arguments, no secret on any command line):
#   ARCHIVE_MAIL_TO         required; recipients, comma-separated ("a@x.org, b@y.org")
#   ARCHIVE_MAIL_FROM       required; sender address
#   ARCHIVE_MAIL_SUBJECT    default "[archive] test message from HOSTNAME"
#   ARCHIVE_MAIL_BODY_FILE  file with the plain-text body; unset: a short test body
#   ARCHIVE_MAIL_ATTACH     optional file, attached as text/plain
#   ARCHIVE_MAIL_TRANSPORT  mta (default) | smtp | smtps
#   ARCHIVE_MAIL_SENDMAIL   mta: sendmail command (default "/usr/sbin/sendmail -oem -oi")
#   ARCHIVE_MAIL_SMTP_HOST  smtp, smtps: server name or address (required)
#   ARCHIVE_MAIL_SMTP_PORT  default 587 (smtp) or 465 (smtps)
#   ARCHIVE_MAIL_STARTTLS   smtp: yes (default; STARTTLS required) | no (only without a user)
#   ARCHIVE_MAIL_SMTP_USER  optional login; needs ARCHIVE_MAIL_SMTP_PASSWORD_FILE
#   ARCHIVE_MAIL_SMTP_PASSWORD_FILE  file whose first line is the password
#   ARCHIVE_MAIL_CA_FILE    PEM CA bundle to trust (default /etc/ssl/certs/ca-certificates.crt);
#                           the certificate and host name are always verified
#   ARCHIVE_MAIL_TIMEOUT    seconds before giving up (default 60)
#   ARCHIVE_MAIL_WORK_DIR   private scratch dir (default: mktemp -d in ${TMPDIR:-/tmp}, removed)
# Output: nothing on stdout; on failure mutt's own last error line, then the cause.
# Exit codes:
#   0   sent
#   2   usage, or a missing or invalid input
#   40  the SMTP server is unreachable (refused, unknown host, no route)
#   41  the server's TLS certificate is not trusted or does not match the host name
#   42  the server refused the login, or requires one and no user is set
#   43  the server refused a recipient or the sender
#   44  the server does not offer (START)TLS as configured, or a password would go in clear
#   45  the local MTA (sendmail) failed
#   46  timed out (ARCHIVE_MAIL_TIMEOUT)
#   127 mutt or the sendmail program not found
#   1   anything else
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode,
# verified.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

work="" rcfile="" secret_rc="" # globals: cleanup reads the first two, main the last

cleanup() {
  [[ -z $rcfile ]] || rm -rf -- "$rcfile" "$rcfile".{certs,err,body,sendmail,mta,tmp}
  [[ -n ${ARCHIVE_MAIL_WORK_DIR:-} ]] || rm -rf -- "$work"
}

# q quotes a value for a muttrc: double quotes, with \ " ` $ escaped, newlines as \n.
q() {
  local s=$1
  s=${s//\\/\\\\} s=${s//\"/\\\"} s=${s//\`/\\\`} s=${s//\$/\\\$} s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}

# transport_rc prints the muttrc lines of the chosen transport.
transport_rc() {
  local mode=${ARCHIVE_MAIL_TRANSPORT:-mta} tls=${ARCHIVE_MAIL_STARTTLS:-yes} user=${ARCHIVE_MAIL_SMTP_USER:-}
  local host=${ARCHIVE_MAIL_SMTP_HOST:-} port pass="" scheme=smtp words=()
  if [[ $mode == mta ]]; then
    read -ra words <<<"${ARCHIVE_MAIL_SENDMAIL:-/usr/sbin/sendmail -oem -oi}" # split like mutt does
    command -v "${words[0]:-}" >/dev/null ||
      die 127 "the sendmail program \"${words[0]:-}\" was not found (ARCHIVE_MAIL_SENDMAIL)"
    # mutt throws the MTA's stderr away in batch mode: a wrapper keeps it for the operator
    [[ $BASH$rcfile != *[[:space:]]* ]] || die 2 "the path \"$rcfile\" must not hold spaces (ARCHIVE_MAIL_WORK_DIR)"
    printf 'exec %s "$@" 2>>%q\n' "$(printf '%q ' "${words[@]}")" "$rcfile.mta" >"$rcfile.sendmail"
    echo "set sendmail=$(q "$BASH $rcfile.sendmail") use_envelope_from=yes"
    return
  fi
  [[ $mode == smtp || $mode == smtps ]] || die 2 "ARCHIVE_MAIL_TRANSPORT must be mta, smtp or smtps, not \"$mode\""
  [[ -n $host ]] || die 2 "ARCHIVE_MAIL_SMTP_HOST is not set"
  [[ $host == *:* ]] && host="[$host]"
  [[ $mode == smtps ]] && scheme=smtps tls=yes
  port=${ARCHIVE_MAIL_SMTP_PORT:-$([[ $mode == smtps ]] && echo 465 || echo 587)}
  [[ $port =~ ^[0-9]+$ ]] || die 2 "ARCHIVE_MAIL_SMTP_PORT must be a number, not \"$port\""
  [[ $tls == yes || $tls == no ]] || die 2 "ARCHIVE_MAIL_STARTTLS must be yes or no, not \"$tls\""
  if [[ -n $user ]]; then
    [[ $tls == yes ]] || die 44 "refusing to send the password of \"$user\" without TLS; set ARCHIVE_MAIL_STARTTLS=yes"
    [[ -n ${ARCHIVE_MAIL_SMTP_PASSWORD_FILE:-} ]] || die 2 "ARCHIVE_MAIL_SMTP_USER is set but ARCHIVE_MAIL_SMTP_PASSWORD_FILE is not"
    IFS= read -r pass <"$ARCHIVE_MAIL_SMTP_PASSWORD_FILE" || [[ -n $pass ]] ||
      die 2 "cannot read a password from \"$ARCHIVE_MAIL_SMTP_PASSWORD_FILE\" (ARCHIVE_MAIL_SMTP_PASSWORD_FILE)"
    # Never on disk: mutt reads it from a pipe (see main), so no file holds it after a kill -9.
    secret_rc="set smtp_pass=$(q "${pass%$'\r'}")"
    user="$(urlencode "$user")@"
  fi
  echo "set smtp_url=$(q "$scheme://$user$host:$port/") ssl_force_tls=$tls ssl_starttls=$tls"
  echo "set ssl_ca_certificates_file=$(q "${ARCHIVE_MAIL_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}")"
}

# cause maps mutt's exit code and stderr to this step's exit code and sentence.
cause() {
  local rc=$1 err=$rcfile.err line
  # mutt's generic lines come last; show the specific one before them
  line=$(grep -Ev '^Could not (send the message|negotiate TLS connection)\.?$' "$err" | grep . | tail -n 1) ||
    line=$(grep . "$err" | tail -n 1) || true
  [[ -n $line ]] && echo "mutt: $line" >&2
  [[ $rc -ne 124 && $rc -ne 137 ]] || # timeout(1): 124 after TERM, 137 after KILL
    die 46 "no answer from the mail server within ${ARCHIVE_MAIL_TIMEOUT:-60} s (ARCHIVE_MAIL_TIMEOUT)"
  if grep -Eq 'Could not connect|Could not find the host|Connection refused|No route to host|unreachable' "$err"; then
    die 40 "cannot reach the SMTP server (ARCHIVE_MAIL_SMTP_HOST, ARCHIVE_MAIL_SMTP_PORT)"
  elif grep -Eqi 'certificate' "$err"; then
    die 41 "the server's TLS certificate is not trusted or does not match the host name (ARCHIVE_MAIL_CA_FILE, ARCHIVE_MAIL_SMTP_HOST)"
  elif grep -Eqi 'authentication failed|No authenticators available|failed: 53[05] .*auth' "$err"; then
    die 42 "the server refused the login, or wants one (ARCHIVE_MAIL_SMTP_USER, ARCHIVE_MAIL_SMTP_PASSWORD_FILE)"
  elif grep -Eq 'STARTTLS|SMTP session failed: (500|502|454)' "$err"; then
    die 44 "the server does not offer STARTTLS, or requires it (ARCHIVE_MAIL_STARTTLS)"
  elif grep -Eq 'gnutls|TLS' "$err"; then
    die 44 "the server does not speak TLS as configured: smtps is TLS from the start (port 465), smtp uses STARTTLS (port 587) (ARCHIVE_MAIL_TRANSPORT, ARCHIVE_MAIL_SMTP_PORT)"
  elif grep -Eq 'SMTP session failed: (550|551|553|450|5[0-9][0-9] 5\.1\.[0-9]|554 5\.7\.1)' "$err"; then
    die 43 "the server refused a recipient or the sender (ARCHIVE_MAIL_TO, ARCHIVE_MAIL_FROM)"
  elif grep -q 'Error sending message, child exited' "$err"; then
    [[ ! -s $rcfile.mta ]] || tail -n 3 "$rcfile.mta" >&2 # the MTA's own words
    die 45 "the local MTA failed to take the message (ARCHIVE_MAIL_SENDMAIL)"
  fi
  die 1 "mutt could not send the mail (exit code $rc); see its message above"
}

main() {
  help "$@"
  [[ $# -eq 0 ]] || die 2 "mail.sh takes no arguments, only ARCHIVE_MAIL_* variables (see mail.sh -h)"
  [[ -n ${ARCHIVE_MAIL_TO:-} ]] || die 2 "ARCHIVE_MAIL_TO is not set"
  [[ -n ${ARCHIVE_MAIL_FROM:-} ]] || die 2 "ARCHIVE_MAIL_FROM is not set"
  tools mutt mutt
  local timeout=${ARCHIVE_MAIL_TIMEOUT:-60} rc=0 body f
  local subject=${ARCHIVE_MAIL_SUBJECT:-"[archive] test message from $(uname -n)"} to=() args=()
  [[ $timeout =~ ^[1-9][0-9]*$ ]] || die 2 "ARCHIVE_MAIL_TIMEOUT must be a number of seconds, not \"$timeout\""
  IFS=, read -ra to <<<"$ARCHIVE_MAIL_TO"
  for f in "${to[@]}"; do
    read -r f <<<"$f" # trims the spaces around
    [[ -z $f ]] || args+=("$f")
  done
  [[ ${#args[@]} -gt 0 ]] || die 2 "ARCHIVE_MAIL_TO holds no address"
  for f in ${ARCHIVE_MAIL_BODY_FILE:+"$ARCHIVE_MAIL_BODY_FILE"} ${ARCHIVE_MAIL_ATTACH:+"$ARCHIVE_MAIL_ATTACH"}; do
    [[ -f $f && -r $f ]] || die 2 "cannot read \"$f\" (ARCHIVE_MAIL_BODY_FILE or ARCHIVE_MAIL_ATTACH)"
  done
  trap cleanup EXIT
  work=${ARCHIVE_MAIL_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/archive-mail.XXXXXX")}
  rcfile=$(mktemp "$work/muttrc.XXXXXX") || die 2 "cannot write in \"$work\" (ARCHIVE_MAIL_WORK_DIR)"
  : >"$rcfile.certs" && mkdir "$rcfile.tmp" # mutt's own temp files, removed even if it is killed
  {
    transport_rc
    echo "set from=$(q "$ARCHIVE_MAIL_FROM") realname=\"\" use_from=yes copy=no record=\"\" postponed=\"\""
    echo "set folder=$(q "$work") spoolfile=$(q "$work") tmpdir=$(q "$rcfile.tmp") header_cache=\"\""
    echo "set certificate_file=$(q "$rcfile.certs") ssl_verify_host=yes ssl_verify_dates=yes"
    echo "set charset=utf-8 send_charset=us-ascii:utf-8 attach_charset=utf-8"
    echo "set mime_type_query_first=yes mime_type_query_command=\"echo text/plain; :\""
  } >>"$rcfile"
  args=(-- "${args[@]}")
  [[ -z ${ARCHIVE_MAIL_ATTACH:-} ]] || args=(-a "$ARCHIVE_MAIL_ATTACH" "${args[@]}")
  body=${ARCHIVE_MAIL_BODY_FILE:-$rcfile.body}
  [[ -n ${ARCHIVE_MAIL_BODY_FILE:-} ]] ||
    echo "This is a test message from archive on $(uname -n), sent $(date -R)." >"$body"
  # The muttrc reaches mutt through a pipe, the password appended there (printf is a builtin: not
  # on any command line).
  timeout -k 5 "$timeout" mutt -n -F <(cat -- "$rcfile" && printf '%s\n' "$secret_rc") -s "$subject" "${args[@]}" \
    <"$body" >/dev/null 2>"$rcfile.err" || rc=$?
  [[ $rc -eq 0 ]] || cause "$rc"
}

main "$@"
