"""Graph-to-graph passes, one per file, each a small class registered by name (manager.py).

DEFAULT_PIPELINE is the target-independent clean-up every compile starts with;
compiler/pipeline.py adds equalize, quantize and the target passes as a compile asks.
"""

from compiler.passes import (  # noqa: F401  (registration)
    conv_transpose_blocks,
    dce,
    equalize,
    fold_affine,
    fold_batchnorm,
    fold_constants,
    fuse_eltwise,
    fuse_epilogue,
    keep_in_l2,
    layout,
    lower_qdq,
    quantize,
    recognize_gelu,
    recognize_hardswish,
    recognize_layernorm,
    recognize_silu,
    tile,
)
from compiler.passes.manager import (
    PASSES,
    Pass,
    PassError,
    as_passes,
    format_pipeline,
    option,
    parse_pipeline,
    register,
    run_pipeline,
)

DEFAULT_PIPELINE: list[str] = [
    "lower-qdq",  # first: fold-constants would turn a QDQ model's int8 weights into floats
    "fold-constants",
    "fold-batchnorm",
    "fold-affine",
    "conv-transpose-blocks",
    "dce",
    "recognize-gelu",
    "recognize-silu",
    "recognize-hardswish",
    "recognize-layernorm",
    "dce",
]

#: what an accelerator target runs after quantisation (each with the target's profile)
TARGET_PIPELINE: list[str] = ["layout", "fold-layout", "fuse-eltwise", "keep-in-l2", "tile"]
#: what the host target runs after quantisation
HOST_INT8_PIPELINE: list[str] = ["fuse-epilogue"]

__all__ = ["DEFAULT_PIPELINE", "HOST_INT8_PIPELINE", "PASSES", "TARGET_PIPELINE", "Pass",
           "PassError", "as_passes", "format_pipeline", "option", "parse_pipeline", "register",
           "run_pipeline"]
