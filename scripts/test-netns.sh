#!/usr/bin/env bash
# Runs the *.netns.test.ts files (vitest.netns.config.ts) inside a fresh network namespace
# that has only loopback, so tests that hand real private and public addresses to network
# code (the SSRF guard) cannot send a packet off the machine, even when the code is broken.
# Needs root (CAP_SYS_ADMIN) and unshare/ip (util-linux, iproute2). Extra arguments go to vitest.
# A Redis is started inside the namespace on 127.0.0.1:6379 when redis-server is installed
# (the namespace is a fresh port space and cannot see the machine's Redis). A private mount
# namespace gives the tests an /etc/hosts with test/fixtures/netns-hosts appended, so the real
# resolver answers internal-looking names (minio.cutout.test → 10.0.0.5) without any DNS server.
set -euo pipefail
cd "$(dirname "$0")/.."
# Run directly (sudo bash scripts/test-netns.sh) as well as through npm: the project's Node 24
# (node_modules/.bin/node on Linux x64) first, as npm scripts have it.
export PATH="$PWD/node_modules/.bin:$PATH"

fail() { echo "test-netns: $*; the network-namespace tests did NOT run" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (unshare --net needs CAP_SYS_ADMIN), e.g. sudo bash scripts/test-netns.sh"
command -v unshare >/dev/null || fail "unshare not found (apt-get install util-linux)"
command -v ip >/dev/null || fail "ip not found (apt-get install iproute2)"
[ -x node_modules/.bin/vitest ] || fail "node_modules/.bin/vitest not found (run npm ci)"
unshare --net --mount true 2>/dev/null || fail "unshare --net --mount is not permitted here (a container without CAP_SYS_ADMIN, or seccomp)"

# unshare makes the new mount namespace private, so the bind mount never reaches the machine.
exec unshare --net --mount bash -euo pipefail -c '
  ip link set lo up
  hosts=$(mktemp)
  trap "rm -f $hosts" EXIT
  cat /etc/hosts test/fixtures/netns-hosts > "$hosts"
  mount --bind "$hosts" /etc/hosts
  if command -v redis-server >/dev/null; then
    redis_dir=$(mktemp -d)
    redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir "$redis_dir" --logfile "$redis_dir/redis.log" &
    redis_pid=$!
    trap "kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf $redis_dir $hosts" EXIT
    for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  else
    echo "test-netns: redis-server not installed; no Redis inside the namespace" >&2
  fi
  # No npx: nothing here may try the registry.
  CUTOUT_NETNS=1 node_modules/.bin/vitest run --config vitest.netns.config.ts "$@"
' test-netns "$@"
