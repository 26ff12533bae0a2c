;; expect: exit code 3
;; Grows a table with a declared huge maximum in small steps until refused,
;; then exits 3: the table stops at the sandbox's cap.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (table 0 0xffffffff funcref)
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (br_if $l (i32.ne (table.grow 0 (ref.null func) (i32.const 4096)) (i32.const -1))))
    (call $exit (i32.const 3))))
