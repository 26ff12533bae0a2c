#!/bin/sh
# Builds the Rust guests with Debian's packaged toolchain and crates (offline)
# and copies the modules to where the Go packages embed them
# (internal/guests and internal/guests/guesttest).
set -eu
cd "$(dirname "$0")"

RUSTC="${RUSTC:-/usr/bin/rustc}"
CARGO="${CARGO:-/usr/bin/cargo}"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
export RUSTC CARGO_TARGET_DIR

"$CARGO" build --release --target wasm32-wasi --offline

out="$CARGO_TARGET_DIR/wasm32-wasi/release"
mkdir -p ../internal/guests/wasm ../internal/guests/guesttest/wasm
for g in hello wordcount ocr langid; do
	cp "$out/$g.wasm" "../internal/guests/wasm/$g.wasm"
done
cp "$out/misbehave.wasm" ../internal/guests/guesttest/wasm/misbehave.wasm
cp "$out/badimport.wasm" ../internal/guests/guesttest/wasm/badimport.wasm
cp "$out/nnrun.wasm" ../internal/guests/guesttest/wasm/nnrun.wasm
