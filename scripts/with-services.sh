#!/usr/bin/env bash
# Starts a real Redis, a real 3-master Redis Cluster and a real MinIO on free
# loopback ports with data in a temporary directory, runs the given command
# with WASMJOBS_TEST_* pointing at them, and stops them all afterwards, also
# on failure or interrupt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wasmjobs-test.XXXXXX")
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT INT TERM

wait_ready() { # name pid probe port
	if wait_for "$2" 300 "$3" "$4"; then return 0; fi
	echo "$1 did not answer on port $4 within 30 s; its log:" >&2
	cat "$tmp/$1.log" >&2
	return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --databases 1024 --save "" --appendonly no \
	--dir "$tmp" --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_ready redis "${pids[-1]}" redis_pong "$redis_port"

# Three masters, no replicas; each node's cluster bus gets a free port of its
# own (by default it is the client port + 10000, which may be taken or past
# 65535).
cluster_nodes=()
for i in 1 2 3; do
	port=$(free_port)
	bus=$(free_port)
	mkdir -p "$tmp/cluster-$i"
	redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 --cluster-enabled yes \
		--cluster-config-file "$tmp/cluster-$i/nodes.conf" --cluster-node-timeout 5000 \
		--save "" --appendonly no --dir "$tmp/cluster-$i" --loglevel warning >"$tmp/cluster-$i.log" 2>&1 &
	pids+=($!)
	wait_ready "cluster-$i" "${pids[-1]}" redis_pong "$port"
	cluster_nodes+=("127.0.0.1:$port")
done
if ! redis-cli --cluster create "${cluster_nodes[@]}" --cluster-replicas 0 --cluster-yes >"$tmp/cluster-create.log" 2>&1 ||
	! wait_for "${pids[-1]}" 300 cluster_ok "${cluster_nodes[@]}"; then
	echo "the Redis Cluster did not form within 30 s:" >&2
	cat "$tmp/cluster-create.log" "$tmp"/cluster-*.log >&2
	exit 1
fi

minio_port=$(free_port)
console_port=$(free_port)
mkdir -p "$tmp/minio"
MINIO_ROOT_USER=wasmjobs MINIO_ROOT_PASSWORD=wasmjobs-test-secret MINIO_BROWSER=off \
	MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
	.tools/bin/minio server "$tmp/minio" --address "127.0.0.1:$minio_port" \
	--console-address "127.0.0.1:$console_port" --quiet >"$tmp/minio.log" 2>&1 &
pids+=($!)
wait_ready minio "${pids[-1]}" minio_live "$minio_port"

cluster_list=$(IFS=,; echo "${cluster_nodes[*]}")
echo "test services: redis 127.0.0.1:$redis_port, redis cluster $cluster_list, minio 127.0.0.1:$minio_port" >&2
export WASMJOBS_TEST_REDIS="redis://127.0.0.1:$redis_port"
export WASMJOBS_TEST_REDIS_CLUSTER="$cluster_list"
export WASMJOBS_TEST_S3="127.0.0.1:$minio_port"
export WASMJOBS_TEST_S3_ACCESS=wasmjobs
export WASMJOBS_TEST_S3_SECRET=wasmjobs-test-secret
export WASMJOBS_TEST_REQUIRE=1
"$@"
