# lib.sh: what the test servers share; each script sources it.
# shellcheck shell=bash

# free_port: a loopback port nobody listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [TENTHS]: until something listens on PORT, TENTHS tenths of a second at most
# (default 50); the caller's start then checks the server by using it.
wait_port() {
  local i
  for ((i = 0; i < ${2:-50}; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 0
}

# stop_pid FILE: stop the server whose pid FILE holds (nothing when there is none).
stop_pid() {
  local pid
  pid=$(cat -- "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
}
