;; expect: ran past its deadline
;; The wasm start function runs during instantiation, before _start.
(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "_start")))
