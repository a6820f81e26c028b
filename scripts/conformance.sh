#!/usr/bin/env bash
# npm run conformance [-- UNIT ...]: Redis's own test suite, for the exact redis-server installed,
# run unit by unit against one plain redis-server and through `ringside demo` (3 masters, 1 replica
# each), in Redis's cluster-compatible mode. Prints, per unit, ok / err / exception and whether the
# unit ran to its end, for both targets, and the totals. Logs: .cache/conformance/<target>/<unit>.log.
#
# The suite comes from Debian's source package of `redis` (a deb-src entry is added beside the
# existing Debian sources when missing; `apt-get source --download-only redis`; only tests/ is
# kept). Nothing else is fetched. Needs root for apt (it says what to run otherwise) and tclsh.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
UNITS_DEFAULT=(unit/type/string unit/type/incr unit/type/list unit/type/hash unit/type/set unit/type/zset
  unit/type/stream unit/type/stream-cgroups unit/keyspace unit/expire unit/multi unit/scripting unit/pubsub
  unit/bitops unit/hyperloglog unit/geo unit/protocol unit/info-command unit/auth unit/quit unit/sort
  unit/scan unit/dump unit/functions unit/pubsubshard)
TAGS="-needs:debug -needs:repl -needs:save -needs:other-server -needs:config-maxmemory -large-memory"
UNIT_TIMEOUT=${CONFORMANCE_UNIT_TIMEOUT:-600}
if [ $# -gt 0 ]; then units=("$@"); else units=("${UNITS_DEFAULT[@]}"); fi

bash scripts/ensure-redis.sh || exit 1
command -v tclsh >/dev/null || { echo "conformance: tclsh is needed (apt-get install -y tcl)" >&2; exit 1; }
version=$(redis-server --version | sed -nE 's/.*v=([0-9.]+).*/\1/p')
cache="$root/.cache/conformance"
suite="$cache/redis-$version"
mkdir -p "$cache"

# ---- the suite for this version
if [ ! -f "$suite/tests/test_helper.tcl" ]; then
  if [ "$(id -u)" != 0 ]; then echo "conformance: fetching Redis's tests needs root (apt-get source)" >&2; exit 1; fi
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    src=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    if [ -n "$src" ]; then sed 's/^Types: deb$/Types: deb-src/' "$src" > /etc/apt/sources.list.d/ringside-deb-src.sources
    else sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/ringside-deb-src.list; fi
  fi
  apt-get update -qq >&2 || exit 1
  dl=$(mktemp -d)
  (cd "$dl" && apt-get source --download-only "redis=$(dpkg-query -W -f='${Version}' redis-server)" >/dev/null 2>&1 \
    || apt-get source --download-only redis >/dev/null 2>&1) || { echo "conformance: apt-get source redis failed" >&2; exit 1; }
  tarball=$(ls "$dl"/redis_*.orig.tar.* | head -1)
  mkdir -p "$suite"
  tar -xf "$tarball" -C "$suite" --strip-components=1 --wildcards '*/tests' || exit 1
  rm -rf "$dl"
  echo "conformance: Redis $version's tests in $suite" >&2
fi

# ---- the two targets
[ -d dist ] || npx tsc -p . || exit 1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM
free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
wait_ping() { for _ in $(seq 1 200); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.1; done; return 1; }

direct_port=$(free_port)
ddir=$(mktemp -d)
redis-server --port "$direct_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$ddir" --logfile "$ddir/log" &
pids+=($!)
ring_port=$(free_port)
node --initial-old-space-size=64 --max-semi-space-size=8 bin/ringside.js demo --port "$ring_port" --log-level warn > "$cache/demo.log" 2>&1 &
pids+=($!)
wait_ping "$direct_port" || { echo "conformance: the direct redis-server did not start" >&2; exit 1; }
wait_ping "$ring_port" || { echo "conformance: ringside demo did not start (see $cache/demo.log)" >&2; exit 1; }
# the lease must be confirmed before the suite's first command
for _ in $(seq 1 100); do redis-cli -p "$ring_port" set conformance:probe 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
redis-cli -p "$ring_port" del conformance:probe >/dev/null

run_unit() { # target port unit -> "ok err exc done"
  local target=$1 port=$2 unit=$3 log="$cache/$1/${3//\//_}.log"
  mkdir -p "$cache/$target"
  (cd "$suite" && timeout "$UNIT_TIMEOUT" tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" --cluster-mode \
    --single "$unit" --clients 1 --tags "$TAGS" --timeout 120) > "$log" 2>&1 < /dev/null
  local clean; clean=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
  local ok err exc done=no
  ok=$(grep -c '^\[ok\]:' <<<"$clean"); err=$(grep -c '^\[err\]:' <<<"$clean"); exc=$(grep -c '^\[exception\]:' <<<"$clean")
  grep -q '\[1/1 done\]' <<<"$clean" && done=yes
  echo "$ok $err $exc $done"
}

printf '%-28s | %-22s | %-22s\n' unit 'direct ok/err/exc' 'ringside ok/err/exc'
printf '%s\n' "-----------------------------+------------------------+-----------------------"
tot=(0 0 0 0 0 0); stopped_d=0; stopped_r=0
# the data nodes behind the sidecar, from the demo's banner ("cluster: a=host:port(+replica,...) ...")
nodes=$(sed -n 's/^cluster: //p' "$cache/demo.log" | tr ' ' '\n' | sed -E 's/^[a-z]+=//; s/[()+]/ /g' | tr ', ' '\n\n' | grep -E ':[0-9]+$')
# a unit that leaves a script running (a test that failed before its SCRIPT KILL) must not fail the
# units after it: between units every node is told to kill what runs, and the sidecar to forget pauses
settle() {
  for n in $nodes; do redis-cli -h "${n%:*}" -p "${n##*:}" script kill >/dev/null 2>&1; redis-cli -h "${n%:*}" -p "${n##*:}" function kill >/dev/null 2>&1; done
  redis-cli -p "$direct_port" script kill >/dev/null 2>&1
  redis-cli -p "$ring_port" client unpause >/dev/null 2>&1
}

for u in "${units[@]}"; do
  settle
  redis-cli -p "$direct_port" flushall >/dev/null 2>&1
  read -r dok derr dexc ddone < <(run_unit direct "$direct_port" "$u")
  redis-cli -p "$ring_port" flushall >/dev/null 2>&1
  read -r rok rerr rexc rdone < <(run_unit ringside "$ring_port" "$u")
  [ "$ddone" = yes ] || stopped_d=$((stopped_d + 1))
  [ "$rdone" = yes ] || stopped_r=$((stopped_r + 1))
  printf '%-28s | %5s %4s %4s %-7s | %5s %4s %4s %-7s\n' "$u" "$dok" "$derr" "$dexc" "$([ "$ddone" = yes ] || echo stopped)" \
    "$rok" "$rerr" "$rexc" "$([ "$rdone" = yes ] || echo stopped)"
  tot=($((tot[0] + dok)) $((tot[1] + derr)) $((tot[2] + dexc)) $((tot[3] + rok)) $((tot[4] + rerr)) $((tot[5] + rexc)))
done
printf '%s\n' "-----------------------------+------------------------+-----------------------"
printf '%-28s | %5s %4s %4s %-7s | %5s %4s %4s %-7s\n' total "${tot[0]}" "${tot[1]}" "${tot[2]}" "stopped:$stopped_d" "${tot[3]}" "${tot[4]}" "${tot[5]}" "stopped:$stopped_r"
echo "logs: $cache/{direct,ringside}/"
