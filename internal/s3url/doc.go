// Package s3url is the leaf of wasmjobs' packages: s3://bucket/key object
// URLs, the names of every object wasmjobs writes (job outputs, a batch's
// manifest and summary) and the allow-lists that say which objects jobs may
// read and write. It imports nothing of ours, so the public producer API,
// the storage adapter and the worker can all share it.
package s3url
