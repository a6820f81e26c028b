#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (with --test also systemd-analyze, ip and nft, with --bench nutcracker)
# are on this machine.
# Installs them from the distribution's packages when run as root with apt-get; otherwise says
# exactly what to run.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# --test: also what the test suite checks deploy files with (systemd-analyze verifies the units),
# and Debian's Celery and RQ (with redis-py) for /usr/bin/python3: real task-queue libraries the
# compatibility tests run through the sidecar (test/compat/)
if [ "${1:-}" = "--test" ]; then
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  # the partition tests (test/partition): hosts as network namespaces, cuts and loss with nftables
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v nft >/dev/null 2>&1 || need+=(nftables)
  if [ -x /usr/bin/python3 ] || command -v apt-get >/dev/null 2>&1; then
    /usr/bin/python3 -c 'import celery, redis, rq' >/dev/null 2>&1 || need+=(python3-celery python3-redis python3-rq)
  fi
fi
if [ "${1:-}" = "--bench" ]; then
  command -v nutcracker >/dev/null 2>&1 || need+=(nutcracker)
  command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ringside: installing ${need[*]} from the distribution's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  # The Debian package may start a system redis on 6379; ours run on their own ports.
  exit 0
fi
echo "ringside: missing ${need[*]}. Install them with:  sudo apt-get install -y ${need[*]}" >&2
exit 1
