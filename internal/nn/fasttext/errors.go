package fasttext

import "errors"

// Errors returned by [Load] and [LoadFile]; they are always wrapped with
// detail, so test for them with [errors.Is].
var (
	// ErrNotFastText means the file does not start with fastText's magic
	// number.
	ErrNotFastText = errors.New("fasttext: not a fastText model file")
	// ErrVersion means the file's format version is newer than this
	// package reads (fastText's FASTTEXT_VERSION 12).
	ErrVersion = errors.New("fasttext: unsupported model file version")
	// ErrCorrupt means the file is truncated or its fields contradict each
	// other.
	ErrCorrupt = errors.New("fasttext: corrupt model file")
	// ErrNotSupervised is returned where a supervised (classification) model
	// is needed and the model is a cbow or skipgram word-vector model.
	ErrNotSupervised = errors.New("fasttext: model is not supervised")
)
