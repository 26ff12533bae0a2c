;; expect: ran past its deadline
;; Loops for ever in the start function, which runs while the instance is
;; created, before _start.
(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "_start")))
