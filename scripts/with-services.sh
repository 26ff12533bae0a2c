#!/usr/bin/env bash
# Starts a real Redis and a real MinIO on free loopback ports with data in a
# temporary directory, runs the given command with WASMJOBS_TEST_* pointing at
# them, and stops both afterwards, also on failure or interrupt.
set -euo pipefail
cd "$(dirname "$0")/.."

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

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if port_free "$p"; then echo "$p"; return 0; fi
	done
	echo "no free port found" >&2
	return 1
}
wait_port() { # name port pid
	for _ in $(seq 1 300); do
		if ! port_free "$2"; then return 0; fi
		if ! kill -0 "$3" 2>/dev/null; then echo "$1 exited during start-up; its log:" >&2; cat "$tmp/$1.log" >&2; return 1; fi
		sleep 0.1
	done
	echo "$1 did not open port $2 within 30 s; its log:" >&2
	cat "$tmp/$1.log" >&2
	return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --databases 1024 --save "" --appendonly no \
	--dir "$tmp" --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_port redis "$redis_port" "${pids[-1]}"

minio_port=$(free_port)
console_port=$(free_port)
mkdir -p "$tmp/minio"
MINIO_ROOT_USER=wasmjobs MINIO_ROOT_PASSWORD=wasmjobs-test-secret MINIO_BROWSER=off \
	MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
	.tools/bin/minio server "$tmp/minio" --address "127.0.0.1:$minio_port" \
	--console-address "127.0.0.1:$console_port" --quiet >"$tmp/minio.log" 2>&1 &
pids+=($!)
wait_port minio "$minio_port" "${pids[-1]}"

echo "test services: redis 127.0.0.1:$redis_port, minio 127.0.0.1:$minio_port" >&2
export WASMJOBS_TEST_REDIS="redis://127.0.0.1:$redis_port"
export WASMJOBS_TEST_S3="127.0.0.1:$minio_port"
export WASMJOBS_TEST_S3_ACCESS=wasmjobs
export WASMJOBS_TEST_S3_SECRET=wasmjobs-test-secret
export WASMJOBS_TEST_REQUIRE=1
"$@"
