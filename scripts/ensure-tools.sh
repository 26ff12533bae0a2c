#!/usr/bin/env bash
# Installs what `make test` needs when it is missing, saying what it installs;
# later runs find everything and print nothing.
#   redis-server           Debian package
#   minio                  `go install` into .tools/bin (about 2.5 minutes, once)
#   Rust wasm32-wasi       Debian packages (cargo, rustc, the wasm32 std, crates)
#   chromium               Debian package, for the headless browser test of the web UI
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS="$PWD/.tools/bin"

apt_install() {
	echo "installing Debian packages: $*" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends "$@" >/dev/null
	fi
}

want=()
command -v redis-server >/dev/null || want+=(redis-server)
[ -x /usr/bin/chromium ] || want+=(chromium)
if [ "${1:-}" != "--no-rust" ]; then
	[ -x /usr/bin/cargo ] || want+=(cargo)
	[ -x /usr/bin/rustc ] || want+=(rustc)
	[ -d /usr/lib/rustlib/wasm32-wasi ] || want+=(libstd-rust-dev-wasm32)
	[ -d /usr/share/cargo/registry ] && ls /usr/share/cargo/registry | grep -q '^serde_json-' || want+=(librust-serde-json-dev)
	[ -d /usr/share/cargo/registry ] && ls /usr/share/cargo/registry | grep -q '^image-' || want+=(librust-image-dev)
fi
if [ ${#want[@]} -gt 0 ]; then
	apt_install "${want[@]}"
fi

if [ ! -x "$TOOLS/minio" ]; then
	echo "installing MinIO server $MINIO_VERSION into .tools/bin (go install, about 2.5 minutes, once)" >&2
	mkdir -p "$TOOLS"
	GOBIN="$TOOLS" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
fi
