// Package guest embeds the guests wasmjobs ships, built from the Rust crates
// in this folder by `make guests` (see README.md here for the guest ABI).
package guest

import (
	_ "embed"
)

var (
	// Hello is the hello guest: a name on stdin, {"greeting":"Hello, NAME!"} out.
	//
	//go:embed wasm/hello.wasm
	Hello []byte

	// Wordcount is the wordcount guest: UTF-8 text on stdin, line, word and
	// character counts and the top words as JSON out.
	//
	//go:embed wasm/wordcount.wasm
	Wordcount []byte
)

// Builtin maps the shipped guests' registration names to their modules.
func Builtin() map[string][]byte {
	return map[string][]byte{"hello": Hello, "wordcount": Wordcount}
}
