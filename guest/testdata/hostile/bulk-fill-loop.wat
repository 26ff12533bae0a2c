;; expect: ran past its deadline
;; First a cheap loop, which lets the sandbox space its deadline checks
;; widely, then a loop whose every iteration fills 48 MiB with one
;; instruction: counting iterations alone would let it run for minutes past
;; its deadline.
(module
  (memory (export "memory") 800)
  (func (export "_start") (local $i i32)
    (loop $warm
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $warm (i32.lt_u (local.get $i) (i32.const 200000000))))
    (loop $l
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 50331648))
      (br $l))))
