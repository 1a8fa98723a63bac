"""Graph-to-graph passes, one per file, each registered by name (see manager.py).

DEFAULT_PIPELINE is the target-independent clean-up that every compile starts with.
"""

from compiler.passes import (  # noqa: F401  (registration)
    dce,
    equalize,
    fold_affine,
    fold_batchnorm,
    fold_constants,
    layout,
    lower_qdq,
    recognize_gelu,
    recognize_hardswish,
    recognize_layernorm,
    recognize_silu,
    tile,
)
from compiler.passes.manager import PASSES, Pass, PassError, register_pass, run_pipeline

DEFAULT_PIPELINE: list[str] = [
    "lower-qdq",  # first: fold-constants would turn a QDQ model's int8 weights into floats
    "fold-constants",
    "fold-batchnorm",
    "fold-affine",
    "dce",
    "recognize-gelu",
    "recognize-silu",
    "recognize-hardswish",
    "recognize-layernorm",
    "dce",
]

#: what an accelerator target runs after quantisation, with its profile (target_context)
TARGET_PIPELINE: list[str] = ["layout", "fold-layout", "tile"]

__all__ = ["DEFAULT_PIPELINE", "PASSES", "TARGET_PIPELINE", "Pass", "PassError",
           "register_pass", "run_pipeline"]
