#!/usr/bin/env bash
# Ringside benchmark entry point (`npm run bench`). Modes and options: bash bench/run.sh --help
#   bash bench/run.sh              direct vs twemproxy vs ringside, → bench/results/latest.{md,json}, ratios.svg
#   bash bench/run.sh --memory     RSS per idle client connection (10 000 connections)
#   bash bench/run.sh --quick      issue-2 check: redis-benchmark -q -n 20000 (all default tests) against the sidecar
#   bash bench/run.sh --durability  what durable mode costs (WAIT per batch), → bench/results/durability.md
# Everything the bench starts (redis-servers, nutcracker, the sidecar, redis-benchmark) is recorded in a
# pid file and stopped at the end, on error and on Ctrl-C / SIGTERM.
set -uo pipefail
cd "$(dirname "$0")/.."

for a in "$@"; do
  if [ "$a" = "--help" ] || [ "$a" = "-h" ]; then
    [ -f dist/bench/run.js ] || npx tsc -p . >/dev/null 2>&1
    exec node dist/bench/run.js --help
  fi
done

bash scripts/ensure-redis.sh --bench || exit 1
command -v stdbuf >/dev/null 2>&1 || { echo "bench: stdbuf (coreutils) is needed" >&2; exit 1; }
[ -d node_modules ] || npm ci --no-audit --no-fund >&2 || exit 1

# 10 000 idle connections in --memory mode need file descriptors on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Build. Type errors elsewhere in the tree (work in progress) do not stop the bench; errors in bench/ do.
tsc_out=$(npx tsc -p . 2>&1 | grep -v '^npm warn')
if [ -n "$tsc_out" ]; then
  if grep -q '^bench/' <<<"$tsc_out"; then
    echo "$tsc_out" >&2
    echo "bench: the bench itself does not type-check" >&2
    exit 1
  fi
  echo "bench: note: \`npx tsc -p .\` reported errors outside bench/ (first lines below); carrying on" >&2
  head -5 <<<"$tsc_out" >&2
fi
[ -f dist/bench/run.js ] || { echo "bench: dist/bench/run.js was not built" >&2; exit 1; }

BENCH_WORK=$(mktemp -d /tmp/ringside-bench.XXXXXX)
BENCH_PIDFILE="$BENCH_WORK/pids"
: >"$BENCH_PIDFILE"
export BENCH_WORK BENCH_PIDFILE
keep=0
for a in "$@"; do [ "$a" = "--keep" ] && keep=1; done
node_pid=""

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_all() {
  # The driver stops its own children; this is the safety net if it could not.
  if alive "$node_pid"; then
    kill -TERM "$node_pid" 2>/dev/null
    for _ in $(seq 1 80); do alive "$node_pid" || break; sleep 0.1; done
    alive "$node_pid" && kill -KILL "$node_pid" 2>/dev/null
  fi
  local left=()
  if [ -f "$BENCH_PIDFILE" ]; then
    while read -r p; do alive "$p" && left+=("$p"); done <"$BENCH_PIDFILE"
  fi
  if [ ${#left[@]} -gt 0 ]; then
    kill -TERM "${left[@]}" 2>/dev/null
    for _ in $(seq 1 30); do
      local still=()
      for p in "${left[@]}"; do alive "$p" && still+=("$p"); done
      [ ${#still[@]} -eq 0 ] && break
      sleep 0.1
    done
    for p in "${left[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
  fi
  if [ "$keep" = 1 ]; then echo "bench: work directory kept: $BENCH_WORK" >&2; else rm -rf "$BENCH_WORK"; fi
}
on_signal() {
  trap - INT TERM HUP
  echo "bench: interrupted, stopping everything" >&2
  stop_all
  trap - EXIT
  exit 130
}
trap on_signal INT TERM HUP
trap stop_all EXIT

# In the background so that the traps run at once on a signal (bash defers them during a foreground wait).
node dist/bench/run.js "$@" &
node_pid=$!
wait "$node_pid"
rc=$?
exit "$rc"
