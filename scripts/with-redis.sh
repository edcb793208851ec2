#!/usr/bin/env bash
# Usage: scripts/with-redis.sh COMMAND [ARGS...]
#
# Runs COMMAND with HOMING_REDIS_URL pointing at a Redis.
# - If HOMING_REDIS_URL is already set, that Redis is used as is.
# - Otherwise a private, throwaway redis-server is started on a free port in a
#   temp dir, and stopped (and its dir removed) when COMMAND exits, fails or is
#   interrupted. This keeps `make demo`/`make bench` away from any shared Redis.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -n "${HOMING_REDIS_URL:-}" ]; then
  exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found on PATH: run 'make redis-check' or 'apt-get install redis-server'," >&2
  echo "or set HOMING_REDIS_URL to an existing Redis." >&2
  exit 1
fi

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/homing-redis.XXXXXX")
pidfile="$tmpdir/redis.pid"

cleanup() {
  # The server is daemonized (not our child), so poll its pid instead of `wait`.
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmpdir"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs exactly once.
trap 'exit 130' INT
trap 'exit 143' TERM

# Ask the kernel for a free port (small race until redis binds it; fine for a demo).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

redis-server --port "$port" --bind 127.0.0.1 --dir "$tmpdir" --save "" --appendonly no \
  --daemonize yes --pidfile "$pidfile" --logfile "$tmpdir/redis.log"

for _ in $(seq 100); do
  [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
if [ "$(redis-cli -p "$port" ping 2>/dev/null)" != PONG ]; then
  echo "private redis-server on port $port did not start; log tail:" >&2
  tail -n 20 "$tmpdir/redis.log" >&2 || true
  exit 1
fi

export HOMING_REDIS_URL="redis://127.0.0.1:$port/0"
echo "with-redis: private redis-server at $HOMING_REDIS_URL (stopped on exit)" >&2

status=0
"$@" || status=$?
exit "$status"
