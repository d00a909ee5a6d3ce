"""Lowering: one module per backend.

- :mod:`graphad.lowering.loops` writes an array program as Numba loop nests
  (elementwise chains fused, reductions inside the loops that feed them, BLAS
  for matrix products), with loop bounds read from the arrays at call time.

Graphs of scalars take the LLVM IR backend (:mod:`graphad.llvm`).
"""
