// Package guesttest embeds guests that misbehave on purpose, for tests of
// the sandbox and the worker. They are built with the shipped guests by
// `make guests`.
package guesttest

import _ "embed"

var (
	// Misbehave fails the way param mode= asks: exit, loop, grow, panic,
	// stderr, big; the default mode echo copies stdin to stdout.
	//
	//go:embed wasm/misbehave.wasm
	Misbehave []byte

	// BadImport imports env.steal_secrets, which no sandbox provides.
	//
	//go:embed wasm/badimport.wasm
	BadImport []byte

	// NNRun runs one registered model (param model=, dims=, type=) on the
	// raw tensor on stdin and writes output 0's raw bytes to stdout.
	//
	//go:embed wasm/nnrun.wasm
	NNRun []byte
)
