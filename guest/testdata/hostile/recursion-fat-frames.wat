;; expect: stack overflow
;; Deep recursion with large frames: the call stack is bounded by wazero's
;; ceiling, not by the frame size.
(module
  (memory (export "memory") 1)
  (func $f (param v128 v128 v128 v128 v128 v128 v128 v128) (result v128)
    (local v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128)
    (i32x4.add
      (call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3)
               (local.get 4) (local.get 5) (local.get 6) (local.get 7))
      (local.get 8)))
  (func (export "_start")
    (drop (call $f (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0)
                   (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0)))))
