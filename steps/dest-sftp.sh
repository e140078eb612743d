#!/usr/bin/env bash
# dest-sftp.sh: the archive server over SSH (rsync to upload, remote sh for the rest).
#
# Usage: dest-sftp.sh check                  log in; the folder exists (writing is put's test)
#        dest-sftp.sh put LOCAL NAME         upload LOCAL as NAME (a temporary name)
#        dest-sftp.sh rename NAME FINAL      rename NAME to FINAL, replacing FINAL atomically
#        dest-sftp.sh verify NAME SHA256 [SIZE]  the remote NAME has that sha256 and size (prints them)
#        dest-sftp.sh list                   one "NAME<TAB>SIZE" line per file in the folder
#        dest-sftp.sh delete NAME            remove NAME
#        dest-sftp.sh get NAME LOCAL         download NAME to LOCAL
# Inputs (environment):
#   ARCHIVE_DEST_HOST, ARCHIVE_DEST_USER  required
#   ARCHIVE_DEST_PORT                     default 22
#   ARCHIVE_DEST_PATH                     the folder on the server (relative to the user's home
#                                         unless absolute; default ".")
#   ARCHIVE_DEST_IDENTITY_FILE            the private key (required; no passphrase, see the guide)
#   ARCHIVE_DEST_KNOWN_HOSTS              the known_hosts file holding the server's key (required;
#                                         an unknown or changed key is refused, never accepted)
#   ARCHIVE_DEST_TIMEOUT                  seconds to connect and between packets (default 30)
# The server needs rsync, sha256sum and GNU find (any Linux server has them).
# Exit codes (the same for every dest-*.sh):
#   0 OK                                  24 permission denied on the server
#   1 other failure                       25 no space left on the server
#   2 usage or missing input              26 the transfer was interrupted
#   20 host unreachable or refused        27 verification failed (checksum or size differs)
#   21 host key or certificate untrusted  28 timed out
#   22 login refused (user, key, password) 29 no such file on the server
#   23 the folder (or share) is missing   30 not a mount point (nfs only)
#                                         31 the server does not offer TLS (ftps only)
#                                         127 a required tool is missing
set -euo pipefail
umask 077
# The steps' shared helpers: die, usage, help, need, tools, read_password, curl_login, urlencode.
# shellcheck source=steps/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# q WORD: quote for the remote POSIX shell.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# fail RC ERRFILE WHAT [rsync]: turn an ssh or rsync failure into the step's exit code and cause.
# Codes 23-29 from a remote command are our own; rsync's own codes overlap them, so not for rsync.
fail() {
  local rc=$1 msg what=$3
  # sshd's own notice for a user without a home folder is no cause: leave it out.
  sed -i '/^Could not chdir to home directory/d' "$2"
  msg=$(grep -v '^$' "$2" | tail -n 1 || true)
  [[ -n $msg ]] && printf '%s\n' "$msg" >&2
  if [[ ${4:-} != rsync ]]; then
    case $rc in 23 | 24 | 25 | 27 | 29) die "$rc" "$what: $(remote_cause "$rc")" ;; esac
  fi
  grep -qi 'host key verification failed\|REMOTE HOST IDENTIFICATION HAS CHANGED\|no .* host key is known' "$2" &&
    die 21 "$what: the server's host key is not the one in $ARCHIVE_DEST_KNOWN_HOSTS (unknown or changed)"
  grep -qi 'permission denied (publickey\|too many authentication failures\|not allowed because' "$2" &&
    die 22 "$what: login refused for user $ARCHIVE_DEST_USER with key $ARCHIVE_DEST_IDENTITY_FILE"
  grep -qi 'could not resolve hostname\|connection refused\|no route to host\|network is unreachable' "$2" &&
    die 20 "$what: cannot reach $ARCHIVE_DEST_HOST port ${ARCHIVE_DEST_PORT:-22}"
  grep -qi 'timed out\|timeout' "$2" && die 28 "$what: timed out talking to $ARCHIVE_DEST_HOST"
  grep -qi 'no space left\|disk quota' "$2" && die 25 "$what: no space left on the server"
  grep -qi 'permission denied' "$2" && die 24 "$what: permission denied in $ARCHIVE_DEST_PATH"
  grep -qi 'no such file or directory' "$2" && die 23 "$what: $ARCHIVE_DEST_PATH does not exist on the server"
  grep -qi 'connection closed\|broken pipe\|connection reset\|connection unexpectedly closed\|error in rsync protocol' "$2" &&
    die 26 "$what: the connection was cut during the transfer"
  die 1 "$what failed (code $rc)"
}

remote_cause() {
  case $1 in
    23) echo "$ARCHIVE_DEST_PATH does not exist on the server" ;;
    24) echo "permission denied in $ARCHIVE_DEST_PATH" ;;
    25) echo "no space left on the server" ;;
    27) echo "the remote file differs from the local one" ;;
    29) echo "no such file in $ARCHIVE_DEST_PATH" ;;
  esac
}

# remote CMD: run a shell command in the destination folder. Remote exits 23/24/25/29 are ours.
remote() {
  local rc=0
  ssh -F "$cfg" archive-dest "cd -- $(q "$dir") 2>/dev/null || exit 23; $1" 2>"$err" || rc=$?
  return "$rc"
}

main() {
  local verb=${1:-}
  help "$@"
  need ARCHIVE_DEST_HOST ARCHIVE_DEST_USER ARCHIVE_DEST_IDENTITY_FILE ARCHIVE_DEST_KNOWN_HOSTS
  tools "openssh-client rsync" ssh rsync
  [[ -r $ARCHIVE_DEST_KNOWN_HOSTS ]] || die 21 "cannot read known_hosts file $ARCHIVE_DEST_KNOWN_HOSTS"
  [[ -r $ARCHIVE_DEST_IDENTITY_FILE ]] || die 22 "cannot read the private key $ARCHIVE_DEST_IDENTITY_FILE"

  # Globals, not locals: the EXIT trap runs after main has returned.
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' EXIT
  cfg=$tmp/ssh_config err=$tmp/err dir=${ARCHIVE_DEST_PATH:-.}
  local t=${ARCHIVE_DEST_TIMEOUT:-30}
  # A config file, not -o options: paths with spaces survive, and rsync -e stays one word.
  cat >"$cfg" <<CFG
Host archive-dest
  HostName "$ARCHIVE_DEST_HOST"
  Port ${ARCHIVE_DEST_PORT:-22}
  User "$ARCHIVE_DEST_USER"
  IdentityFile "$ARCHIVE_DEST_IDENTITY_FILE"
  IdentitiesOnly yes
  UserKnownHostsFile "$ARCHIVE_DEST_KNOWN_HOSTS"
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout $t
  ServerAliveInterval $t
  ServerAliveCountMax 2
CFG
  # Under archive, TMPDIR is the run's private work folder: the run's ssh and rsync calls share
  # one connection through a socket there, closed 3 seconds after the last call. (A socket's path
  # is limited to about 100 bytes.)
  if [[ -n ${TMPDIR:-} && -d $TMPDIR && -O $TMPDIR && ${#TMPDIR} -lt 80 ]]; then
    printf '  ControlMaster auto\n  ControlPath %s/ssh\n  ControlPersist 3\n' "$TMPDIR" >>"$cfg"
  fi

  # rsync splits -e on spaces and reads '...' with '' for a quote: the path (under TMPDIR, the
  # work folder, which may hold spaces and quotes) stays one word.
  rsh="ssh -F '${cfg//\'/\'\'}'"

  local rc=0
  case $verb in
    check)
      # shellcheck disable=SC2016 # $t is expanded by the remote shell, on purpose
      remote 'for t in rsync sha256sum find; do command -v "$t" >/dev/null || { echo "$t"; exit 127; }; done' >"$tmp/missing" || rc=$?
      [[ $rc == 127 ]] && die 127 "the server lacks $(cat "$tmp/missing"): install it there (rsync, coreutils, findutils)"
      [[ $rc == 0 ]] || fail "$rc" "$err" "connection"
      ;;
    put)
      [[ $# == 3 && -f $2 ]] || die 2 "usage: put LOCAL NAME (LOCAL must be a file)"
      rsync --secluded-args --inplace --timeout="$t" -e "$rsh" -- "$2" "archive-dest:$dir/$3" 2>"$err" || rc=$?
      if [[ $rc != 0 ]]; then
        mv -- "$err" "$tmp/put.err"
        # rsync's words for a missing, read-only or full folder vary, and a full disk's may be lost
        # with the connection; ask the folder itself: writable, and room (KiB) for the archive.
        local prc=0 need
        need=$((($(stat -c %s -- "$2") + 1023) / 1024))
        remote "rm -f -- $(q "$3"); [ -w . ] || exit 24; free=\$(df -Pk . | awk 'NR == 2 { print \$4 }')
          [ -z \"\$free\" ] || [ \"\$free\" -ge $need ] || exit 25" || prc=$?
        [[ $prc == 23 || $prc == 24 || $prc == 25 ]] && die "$prc" "upload: $(remote_cause "$prc")"
        fail "$rc" "$tmp/put.err" "upload" rsync
      fi
      ;;
    rename)
      [[ $# == 3 ]] || die 2 "usage: rename NAME FINAL"
      remote "[ -f $(q "$2") ] || exit 29; mv -f -- $(q "$2") $(q "$3") || exit 24" || fail "$?" "$err" "rename"
      ;;
    verify)
      [[ $# == 3 || $# == 4 ]] || die 2 "usage: verify NAME SHA256 [SIZE]"
      local out sum size
      out=$(remote "[ -f $(q "$2") ] || exit 29; wc -c <$(q "$2"); openssl dgst -sha256 -r -- $(q "$2") 2>/dev/null || sha256sum -- $(q "$2")") || fail "$?" "$err" "verify"
      size=$(sed -n 1p <<<"$out" | tr -d ' ')
      sum=$(sed -n 2p <<<"$out" | cut -d' ' -f1)
      printf 'sha256=%s\nsize=%s\n' "$sum" "$size"
      [[ -z ${4:-} || $size == "$4" ]] || die 27 "the remote $2 is $size bytes, not $4"
      [[ $sum == "$3" ]] || die 27 "the remote $2 has sha256 $sum, not $3"
      ;;
    list)
      remote "find . -mindepth 1 -maxdepth 1 -type f -printf '%f\t%s\n'" || fail "$?" "$err" "list"
      ;;
    delete)
      [[ $# == 2 ]] || die 2 "usage: delete NAME"
      remote "[ -f $(q "$2") ] || exit 29; rm -f -- $(q "$2") 2>&1 && ! [ -e $(q "$2") ] || exit 24" || fail "$?" "$err" "delete"
      ;;
    get)
      [[ $# == 3 ]] || die 2 "usage: get NAME LOCAL"
      rsync --secluded-args --timeout="$t" -e "$rsh" -- "archive-dest:$dir/$2" "$3" 2>"$err" || rc=$?
      if [[ $rc != 0 ]]; then
        mv -- "$err" "$tmp/get.err"
        local grc=0
        remote "[ -f $(q "$2") ] || exit 29" || grc=$?
        [[ $grc == 23 || $grc == 29 ]] && die "$grc" "download: $(remote_cause "$grc")"
        fail "$rc" "$tmp/get.err" "download" rsync
      fi
      ;;
    *) die 2 "unknown verb \"$verb\" (-h for help)" ;;
  esac
}

main "$@"
