;; expect: 16 tables, limit 4
(module
  (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref)
  (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref)
  (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref)
  (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref) (table 1 1 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
