#!/usr/bin/env bash
# Installs what `make test` needs when it is missing, saying what it installs,
# and proves each tool works by using it: a tool that is present but broken
# (a linker that is only recommended, not depended on, say) is installed
# again, and one that still does not work stops the build with the reason.
# Later runs find everything working and print nothing.
#   redis-server           Debian package (redis-cli, which forms the test cluster, comes with
#                          it); started on a free loopback port and pinged, once with redis-cli
#   minio                  `go install` into .tools/bin (about 2.5 minutes, once); started and health-checked
#   Rust wasm32-wasi       Debian packages (cargo, rustc, the wasm32 std, lld-14 which links
#                          wasm32 through /usr/bin/rust-lld, the crates); a one-line program is
#                          compiled and linked for wasm32-wasi
#   wat2wasm               Debian package wabt, for the hostile test guests written in WAT
#   gcc + libc6-dev        for cgo (ONNX Runtime's bindings); a C program is compiled, linked and run
#   chromium               Debian package, for the headless browser test of the web UI; renders a page
#   prometheus             Debian package, for the browser test of the dashboard's Metrics tab;
#                          started on a free loopback port scraping itself every second, and
#                          queried until it answers up{job="self"} with 1. The package also
#                          installs a service on :9090, started only where an init system runs
#                          and policy-rc.d allows it; the tests start instances of their own
#                          and never use it
# Usage: ensure-tools.sh [--no-rust]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS="$PWD/.tools/bin"
rust=1
[ "${1:-}" = "--no-rust" ] && rust=0

work=$(mktemp -d "${TMPDIR:-/tmp}/wasmjobs-tools.XXXXXX")
bg=()
cleanup() {
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${bg[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

apt_install() {
	echo "installing Debian packages: $*" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends "$@" >/dev/null
	fi
}

# Each check_* uses its tool for real and returns non-zero, with what it saw
# in $work/<name>.log, when the tool does not work.

check_redis() {
	command -v redis-server >/dev/null || return 1
	local port pid
	port=$(free_port) || return 1
	redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
		>"$work/redis.log" 2>&1 &
	pid=$!
	bg+=("$pid")
	wait_for "$pid" 100 redis_pong "$port" || return 1
	redis-cli -p "$port" ping 2>>"$work/redis.log" | grep -q PONG || return 1
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

check_minio() {
	[ -x "$TOOLS/minio" ] || return 1
	local port cport pid
	port=$(free_port) && cport=$(free_port) || return 1
	mkdir -p "$work/minio"
	MINIO_ROOT_USER=wasmjobs MINIO_ROOT_PASSWORD=wasmjobs-tools-check MINIO_BROWSER=off \
		MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
		"$TOOLS/minio" server "$work/minio" --address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$cport" --quiet >"$work/minio.log" 2>&1 &
	pid=$!
	bg+=("$pid")
	wait_for "$pid" 300 minio_live "$port" || return 1
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

check_rust() {
	[ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] || return 1
	echo 'fn main() { println!("ok"); }' >"$work/one.rs"
	/usr/bin/rustc --edition 2021 --target wasm32-wasi -C opt-level=1 -o "$work/one.wasm" "$work/one.rs" \
		>"$work/rust.log" 2>&1 || return 1
	# The magic number and version of a wasm module.
	[ "$(head -c 8 "$work/one.wasm" | od -An -tx1 | tr -d ' \n')" = 0061736d01000000 ] || return 1
	local c
	for c in serde_json image; do
		ls /usr/share/cargo/registry 2>/dev/null | grep -q "^$c-" || { echo "crate $c missing" >"$work/rust.log"; return 1; }
	done
}

# cgo (ONNX Runtime's bindings, the glibc heap calls) needs a C compiler
# and libc's headers; gcc only recommends libc6-dev.
check_cc() {
	command -v gcc >/dev/null || return 1
	printf '#include <malloc.h>\nint main(void) { return mallopt(M_ARENA_MAX, 2) != 1; }\n' >"$work/one.c"
	gcc -o "$work/one-c" "$work/one.c" >"$work/cc.log" 2>&1 && "$work/one-c"
}

check_wat2wasm() {
	command -v wat2wasm >/dev/null || return 1
	echo '(module (func (export "_start")))' >"$work/one.wat"
	wat2wasm "$work/one.wat" -o "$work/one-wat.wasm" >"$work/wat2wasm.log" 2>&1 || return 1
	[ -s "$work/one-wat.wasm" ]
}

check_chromium() {
	[ -x /usr/bin/chromium ] || return 1
	timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run \
		--user-data-dir="$work/chromium" --dump-dom 'data:text/html,<p id=x>wasmjobs-ok</p>' \
		>"$work/chromium.out" 2>"$work/chromium.log" || return 1
	grep -q wasmjobs-ok "$work/chromium.out"
}

check_prometheus() {
	[ -x /usr/bin/prometheus ] || return 1
	local port pid
	port=$(free_port) || return 1
	mkdir -p "$work/prometheus"
	printf 'scrape_configs:\n  - job_name: self\n    scrape_interval: 1s\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' \
		"$port" >"$work/prometheus.yml"
	/usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
		--web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
	pid=$!
	bg+=("$pid")
	wait_for "$pid" 300 prometheus_ready "$port" || return 1
	wait_for "$pid" 200 prometheus_scraped "$port" self || {
		echo "Prometheus did not answer up{job=\"self\"} with 1 within 20 s (its first scrape comes about 5 s after start)" >>"$work/prometheus.log"
		return 1
	}
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

# name → the Debian packages that provide it
declare -A packages=(
	[redis]="redis-server"
	[chromium]="chromium"
	[prometheus]="prometheus"
	[rust]="cargo rustc libstd-rust-dev-wasm32 lld-14 librust-serde-json-dev librust-image-dev"
	[wat2wasm]="wabt"
	[cc]="gcc libc6-dev"
)
names=(cc redis chromium prometheus wat2wasm)
[ $rust = 1 ] && names+=(rust)

broken=()
for n in "${names[@]}"; do
	"check_$n" || broken+=("$n")
done
if [ ${#broken[@]} -gt 0 ]; then
	want=()
	for n in "${broken[@]}"; do
		# shellcheck disable=SC2206
		want+=(${packages[$n]})
	done
	apt_install "${want[@]}"
	for n in "${broken[@]}"; do
		if ! "check_$n"; then
			echo "ensure-tools: $n does not work after installing ${packages[$n]}:" >&2
			cat "$work/$n.log" >&2 2>/dev/null || true
			exit 1
		fi
	done
fi

if ! check_minio; then
	if [ ! -x "$TOOLS/minio" ]; then
		echo "installing MinIO server $MINIO_VERSION into .tools/bin (go install, about 2.5 minutes, once)" >&2
	else
		echo "MinIO in .tools/bin does not start; installing it again" >&2
	fi
	mkdir -p "$TOOLS"
	GOBIN="$TOOLS" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
	if ! check_minio; then
		echo "ensure-tools: MinIO does not start:" >&2
		cat "$work/minio.log" >&2 || true
		exit 1
	fi
fi
