;; expect: exit code 4026531839
;; Exits with the code wazero uses for a deadline: not a timeout.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 0xefffffff))))
