// Package nn is the host side of WASI-NN: the wasi_ephemeral_nn host module
// that guests import, the Backend seam that inference engines implement, and
// the named models that guests load with load_by_name.
//
// # ABI
//
// The module follows WasmEdge's legacy WASI-NN ABI, so a guest written for
// WasmEdge (for example with the wasmedge-wasi-nn Rust crate) runs unchanged.
// Every function takes i32 parameters and returns an i32 errno (errno.go);
// results are written through guest pointers. Functions WasmEdge exports for
// backends we do not have (compute_single, get_output_single, fini_single)
// answer unsupported_operation, so such guests still instantiate. The
// functions are defined once, as data (hostFuncs in module.go), and
// guest/README.md's table of them is generated from it.
//
// # Safety
//
// Every pointer and length a guest passes is checked through the guestMemory
// helpers in decode.go before anything is read or written: a bad pointer is
// the guest's error (an errno), never a host panic. Graph and context handles
// are per guest instance (see Module.BeginInstance) and released when the
// instance closes, and each instance is capped in contexts, graphs and tensor
// bytes (Config).
//
// # Models
//
// Models are registered by name (Config.Models, like WasmEdge's
// --nn-preload), loaded once per process on the first load_by_name that names
// them, and shared by every instance. The backend is chosen by file
// extension: .onnx → "onnx", .ftz and .bin → "fasttext", .txt → "text" (the
// built-in text backend, which serves a file's bytes as a u8 output).
//
// # Why does this package import wazero?
//
// The sandbox owns wazero (house rule 1), but sandbox.HostModule hands its
// implementations a wazero.Runtime to define functions in; defining host
// functions is the one wazero use outside the sandbox. All argument decoding
// is written against the small guestMemory interface instead, so it is fuzzed
// without a runtime.
package nn
