;; expect: ran past its deadline
;; No loop anywhere: a function that calls itself twice, 60 deep, makes 2^60
;; calls without a deep stack. Deadlines must hold at function entries too.
(module
  (memory (export "memory") 1)
  (func $f (param i32)
    (if (local.get 0)
      (then
        (call $f (i32.sub (local.get 0) (i32.const 1)))
        (call $f (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "_start") (call $f (i32.const 60))))
