// Package onnx is the ONNX Runtime backend of WASI-NN, through
// github.com/yalue/onnxruntime_go (cgo). It is the only package that talks
// to ONNX Runtime.
//
// The shared library (libonnxruntime.so.1) is loaded once per process, on
// the first model load, so a worker without ONNX models never needs it. Each
// model gets one session shared by every execution context of every guest
// instance: ONNX Runtime sessions are safe for concurrent runs, and on CPU
// many sessions-runs in parallel with one intra-op thread each beat fewer,
// wider runs.
//
// # Devices
//
// Config.Device picks the execution provider: DeviceCPU; DeviceCUDA, which
// fails at Probe (and so at worker start) with a clear error when the CUDA
// provider cannot be loaded; or DeviceAuto, which tries CUDA and falls back
// to CPU with one log line.
//
// # Batching
//
// With Config.BatchWindow set, concurrent Compute calls on one graph whose
// inputs all have a dynamic first dimension, and whose other dimensions are
// equal, are merged into one run of up to Config.MaxBatch computes: the
// first caller waits the window (or until the batch is full), runs the
// concatenated inputs and splits the outputs back along the first
// dimension. This is how many small guest instances feed one GPU. It is off
// by default: on CPU, measured, it lowers throughput.
package onnx
