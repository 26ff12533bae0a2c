;; expect: exit code 4294967295
;; Exits with the code wazero uses for a canceled context: it must still be
;; the guest's own exit, not a cancellation the worker retries.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const -1))))
