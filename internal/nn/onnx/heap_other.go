//go:build !linux

package onnx

func limitHeapArenas() {}

func trimHeap() {}
