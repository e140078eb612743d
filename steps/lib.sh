# lib.sh: what every step shares. Each step sources it first, as pass sources its platform file;
# it defines functions and one variable ($step), and runs nothing.
# shellcheck shell=bash

# The step's name, as its messages start: the script's file name without .sh.
step=${0##*/}
step=${step%.sh}

# die CODE MESSAGE...: the cause on stderr, as the step's last line (the one archive shows),
# then exit CODE.
die() {
  local code=$1
  shift
  printf '%s: %s\n' "$step" "$*" >&2
  exit "$code"
}

# usage: the script's header, between the first line and "set -euo pipefail".
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# help ARGS...: -h or --help as the first argument prints the header and exits 0.
help() {
  if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
  fi
}

# need VAR...: every required input is set, else exit 2 naming the first that is not.
need() {
  local v
  for v; do [[ -n ${!v:-} ]] || die 2 "$v is not set (-h for help)"; done
}

# tools PACKAGES TOOL...: every program is in PATH, else exit 127 naming it and the Debian
# packages that bring it.
tools() {
  local packages=$1 t
  shift
  for t; do command -v "$t" >/dev/null || die 127 "$t not found; install it (Debian: $packages)"; done
}

# read_password FILE CODE: the first line of FILE into $password, never on a command line; exit
# CODE when FILE cannot be read or is empty.
read_password() {
  password=
  [[ -r $1 ]] || die "$2" "cannot read the password file $1"
  IFS= read -r password <"$1" || [[ -n $password ]] || die "$2" "the password file $1 is empty"
}

# curl_login USER PASSWORD: the curl config line "user = ..." for curl -K - on standard input
# (so that neither is on a command line); inside its double quotes \ and " are escaped.
curl_login() {
  local s=$1:$2
  s=${s//\\/\\\\}
  printf 'user = "%s"' "${s//\"/\\\"}"
}

# urlencode STRING [KEEP]: percent-encode STRING for a URL, leaving A-Z a-z 0-9 . _ ~ - and
# the characters of KEEP (for example /) as they are.
urlencode() {
  local LC_ALL=C s=$1 keep=${2:-} i c out=
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    if [[ $c == [A-Za-z0-9._~-] || (-n $keep && $keep == *"$c"*) ]]; then
      out+=$c
    else
      printf -v c '%%%02X' "'$c"
      out+=$c
    fi
  done
  printf '%s' "$out"
}

# dispatch VERB ARGS...: runs verb_VERB ARGS..., the step's one function that answers VERB.
dispatch() {
  local verb=${1:-}
  if [[ -z $verb ]] || ! declare -F "verb_$verb" >/dev/null; then
    die 2 "unknown verb \"$verb\" (-h for help)"
  fi
  shift
  "verb_$verb" "$@"
}

# verified NAME SHA256 SIZE GOT_SIZE GOT_SHA256 HOW: what every protocol's verify prints (the
# server's size and sha256, and how they were read), then exit 27 when the copy is not the one
# expected. An empty SIZE is not compared; an empty GOT_SHA256 means the server was not read.
verified() {
  [[ -z $5 ]] || printf 'sha256=%s\n' "$5"
  printf 'size=%s\nverified=%s\n' "$4" "$6"
  [[ -z $3 || $4 == "$3" ]] || die 27 "the remote $1 has $4 bytes, not $3"
  [[ -z $5 || $5 == "$2" ]] || die 27 "the remote $1 has sha256 $5, not $2"
}

# curl_failed WHAT CRC HOSTPORT: a request of WHAT that curl ended with exit code CRC (0: curl
# itself succeeded, nothing is said), told as every curl-based destination tells it, with the
# contract's exit code.
curl_failed() {
  case $2 in
    0) return 0 ;;
    6 | 7) die 20 "$1: cannot reach $3" ;;
    51 | 58 | 60 | 77 | 83) die 21 "$1: the server's certificate is not trusted${ARCHIVE_DEST_CA_FILE:+ by the CA in $ARCHIVE_DEST_CA_FILE}" ;;
    35) die 1 "$1: the TLS handshake with $3 failed" ;;
    28) die 28 "$1: timed out talking to $3" ;;
    18 | 52 | 55 | 56 | 92) die 26 "$1: the connection was cut during the transfer" ;;
    *) die 1 "$1 failed (curl code $2)" ;;
  esac
}

