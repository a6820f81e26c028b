#!/usr/bin/env bash
# The whole test suite: real redis-server processes on loopback ports, started and stopped by the
# tests themselves. Ends with the runner's totals as "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
if ! bash scripts/ensure-redis.sh --test; then echo "0 passed, 1 failed"; exit 1; fi
[ -d node_modules ] || npm ci --no-audit --no-fund
if ! npx tsc -p .; then echo "type check failed"; echo "0 passed, 1 failed"; exit 1; fi
# tap builds its plugin set at install time; rebuild it from package.json's "tap" config (its
# ts-node plugin is off: tests are compiled by tsc, and ts-node does not work with TypeScript 7)
if ! npx tap build >/dev/null; then echo "tap build failed"; echo "0 passed, 1 failed"; exit 1; fi
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find dist/test -name '*.test.js' | sort); fi
log=$(mktemp)
npx tap "${files[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: ' "$log" | tail -1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary"); pass=${pass:-0}
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary"); fail=${fail:-0}
skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
[ "$rc" -ne 0 ] && [ "$fail" = 0 ] && fail=1
rm -f "$log"
if [ -n "$skip" ]; then echo "$pass passed, $fail failed, $skip skipped"; else echo "$pass passed, $fail failed"; fi
exit "$rc"
