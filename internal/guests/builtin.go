// Package guest embeds the guests wasmjobs ships, built from the Rust crates
// in this folder by `make guests` (see README.md here for the guest ABI).
package guests

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

	// OCR is the ocr guest: a PNG or JPEG image on stdin, the text lines
	// found in it as JSON out ({"width":W,"height":H,"lines":[{"text",
	// "confidence","box"}]}). It needs the models ocr-det, ocr-cls, ocr-rec
	// and ocr-keys registered in the worker.
	//
	//go:embed wasm/ocr.wasm
	OCR []byte

	// Langid is the langid guest: UTF-8 text on stdin, the most likely
	// languages as JSON out ({"languages":[{"lang","prob"}]}). It needs the
	// model langid (fastText lid.176) registered in the worker.
	//
	//go:embed wasm/langid.wasm
	Langid []byte
)

// Builtin maps the shipped guests' registration names to their modules.
func Builtin() map[string][]byte {
	return map[string][]byte{"hello": Hello, "wordcount": Wordcount, "ocr": OCR, "langid": Langid}
}
