#!/usr/bin/env bash
# deps.sh: install what the demo or the tests need, once, on Debian.
#
# Usage: deps.sh demo | test
# As root, installs the Debian packages that are missing (apt-get update, then apt-get install -y)
# and, for the tests, the servers Debian does not package (go install: mailpit for SMTP, the Versity
# S3 gateway and gofakes3 for S3) and Pure-FTPd unpacked in /var/cache/archive-test (its package
# conflicts with vsftpd's: apt-get download, dpkg-deb -x; testdata/servers/pureftpd.sh). As
# another user, prints in one line the command that
# installs what is missing, and goes on: the tests that need a missing server then skip, except
# under CI=true, where they fail.
# Exit codes: 0 all there (or told what is missing), 1 the install failed, 2 usage.
set -euo pipefail

demo=(ca-certificates curl zip openssh-server openssh-client rsync pigz python3 openssl)
test=("${demo[@]}" unzip tar gzip coreutils findutils make shellcheck mutt msmtp jq procps bsdutils
  vsftpd nginx libnginx-mod-http-dav-ext samba smbclient util-linux rclone age)
go_servers=(github.com/axllent/mailpit@v1.33.1 github.com/versity/versitygw/cmd/versitygw@v1.8.0
  github.com/johannesboyne/gofakes3/cmd/gofakes3@v1.2.0)

case ${1:-} in
  demo) want=("${demo[@]}") ;;
  test) want=("${test[@]}") ;;
  *) echo "usage: deps.sh demo | test" >&2 && exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
gobin=$(go env GOPATH 2>/dev/null)/bin
go_missing=() need_pure=no
pure=/var/cache/archive-test/pure-ftpd
if [[ $1 == test ]]; then
  for m in "${go_servers[@]}"; do
    t=${m%@*} t=${t##*/}
    command -v "$t" >/dev/null || [[ -x $gobin/$t ]] || go_missing+=("$m")
  done
  command -v pure-ftpd >/dev/null || [[ -x $pure/usr/sbin/pure-ftpd ]] || need_pure=yes
fi

((${#missing[@]} + ${#go_missing[@]})) || [[ $need_pure == yes ]] || exit 0
if [[ $(id -u) != 0 ]]; then
  cmds=()
  ((${#missing[@]} == 0)) || cmds+=("sudo apt-get install -y ${missing[*]}")
  for m in "${go_missing[@]}"; do cmds+=("go install $m"); done
  [[ $need_pure == no ]] || cmds+=("sudo bash testdata/deps.sh test (Pure-FTPd)")
  printf -v cmd '%s && ' "${cmds[@]}"
  echo "deps: missing ${missing[*]} ${go_missing[*]##*/}${need_pure/yes/ pure-ftpd}; install with: ${cmd% && }" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ $need_pure == yes ]]; then
  echo "deps: unpacking pure-ftpd into $pure"
  ((${#missing[@]})) || apt-get update -qq
  d=$(mktemp -d)
  chmod 755 "$d" # apt downloads as its own user
  (cd "$d" && apt-get download -qq pure-ftpd pure-ftpd-common >/dev/null)
  mkdir -p "$pure"
  for deb in "$d"/*.deb; do dpkg-deb -x "$deb" "$pure"; done
  rm -rf -- "$d"
fi
for m in "${go_missing[@]}"; do
  echo "deps: installing $m (go install)"
  go install "$m"
done
