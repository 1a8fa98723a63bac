"""The TVM target: qnnc's IR lowered to an Apache TVM IRModule — a Relax ``main`` that calls
one TIR kernel per node — and built for this host with LLVM.

Kernels (``kernels/``, one module per op family, registered by op name) compute with the
integer arithmetic of ir/qmath.py, so integer results are bit-exact with the interpreter.
TVM itself is imported only when the target is used (``api.py``): without it installed,
every module here still imports and the target raises one clear error when asked to build.
"""
