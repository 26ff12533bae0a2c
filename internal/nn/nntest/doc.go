// Package nntest holds test helpers shared by the tests of nn and its
// backends: a deterministic input image and a one-shot compute.
package nntest
