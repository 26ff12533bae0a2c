;; expect: wasmjobs:sandbox.fuel is the sandbox's own
;; Imports the host function the sandbox adds for its deadline checks.
(module
  (import "wasmjobs:sandbox" "fuel" (func $fuel (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $fuel))))
