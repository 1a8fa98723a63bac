"""How a model is compiled: one options object for compile_model, the CLI and goldens.

Every field has a default, so ``CompileOptions()`` compiles to the IR in f32 with the default
pipeline; the CLI fills the fields from its flags, and compile_model also takes them as
keyword arguments (``compile_model(m, precision="int8", calibration=...)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.errors import QnncError
from compiler.quant.calibrate import DEFAULT_METHOD, METHODS
from compiler.quant.observers import DEFAULT_PERCENTILE, percentile_problem
from ir.qmath import WEIGHT_RANGES

Progress = Callable[[int, int | None], None]
PrintHook = Callable[[str, str], None]
PRECISIONS = ("f32", "int8")
DEFAULT_CALIB_METHOD = DEFAULT_METHOD
#: the calibration methods (--calib-method)
CALIB_METHODS = METHODS
#: --weight-range's default: "paired" for host code on x86-64 CPUs with AVX2 but not AVX-512
#: VNNI (the u8 x s8 kernel runs there, ~1.15-1.3x faster on AVX2-bound models for a small
#: accuracy cost: benchmarks/README.md), "int8" for every other target and CPU
DEFAULT_WEIGHT_RANGE = "auto"
#: --weight-range's choices
WEIGHT_RANGE_CHOICES = ("auto", *WEIGHT_RANGES)


@dataclass
class CompileOptions:
    """Everything compile_model can be told, grouped by what it affects."""

    # -- the model
    #: shapes for inputs with symbolic dimensions, e.g. {"input": (1, 3, 224, 224)}; several
    #: (shape profiles, compiler/shape_profiles.py) as {"x": [(1, 3, 48, 160), (1, 3, 48,
    #: 320)]}, {"seq": [16, 32, 64]}, a list of such dicts, or --input-shape text
    input_shapes: Any = None
    #: with several shape profiles: run() pads an input no profile matches with zeros at the
    #: end of each dimension to the smallest profile at least as large (valid for models
    #: whose own preprocessing pads so, e.g. PP-OCR's recogniser along the width)
    pad_to_profile: bool = False
    #: the largest tensor import may make or fold, in bytes (None: 1 GiB); the budget is
    #: this or 4x the model's largest weight, whichever is larger (compiler/budget.py)
    max_tensor_bytes: int | None = None

    # -- the pass pipeline (compiler/passes/manager.py for the text syntax)
    #: pipeline text or a list of pass texts/instances; None: the default for the target and
    #: precision (``effective_pipeline`` says which); the runtime data (calibration samples,
    #: the target profile) is given to the passes that take it either way
    pipeline: str | Sequence[Any] | None = None
    #: pass names to skip
    disabled_passes: Sequence[str] = ()
    #: pass names (or "all") after which on_print(pass_name, ir_text) is called
    print_after: Sequence[str] = ()
    on_print: PrintHook | None = None

    # -- quantisation (pass quantize)
    #: "f32", or "int8" (calibrated, unless the model comes quantised); None: int8 when
    #: calibration data is given, else f32 (as the CLI's --calib)
    precision: str | None = None
    #: calibration samples: a path (.npz, .npy, folder of .npy), stacked arrays by input name,
    #: or an iterable of feed dicts
    calibration: Any = None
    calib_method: str = DEFAULT_CALIB_METHOD
    #: the percentile method's P: each tail's rarest 100 - P percent of a tensor's values are
    #: clipped (layerwise takes its percentile candidate from it too)
    calib_percentile: float = DEFAULT_PERCENTILE
    skip_layers: Sequence[str] = ()
    skip_op_types: Sequence[str] = ()
    per_channel: bool = True
    #: how weight codes are chosen (WEIGHT_RANGE_CHOICES): "int8" ([-127, 127]); "paired"
    #: (int8, but no aligned pair of same-sign weights sums past 128 in magnitude, so the
    #: host's u8 x s8 kernel multiplies exactly at nearly twice the rate); "int7" ([-63, 63]);
    #: "auto" (the default): paired for host code on an AVX2 CPU without VNNI, else int8
    weight_range: str = DEFAULT_WEIGHT_RANGE
    #: SmoothQuant strength alpha (compiler/quant/smooth.py): the share of each activation
    #: channel's range moved into the weights of the products after a norm; 0: off
    smooth: float = 0.0
    #: cross-layer equalisation after BatchNorm folding (pass equalize)
    equalize: bool = False
    #: held-out samples (same forms as calibration): per-layer accuracy vs f32; with
    #: min_sqnr_db / max_drop, the most sensitive layers stay f32 until the budget holds
    eval_data: Any = None
    min_sqnr_db: float | None = None
    max_drop: float | None = None
    #: called as progress(done, total) per calibration sample
    progress: Progress | None = None

    # -- the target
    #: None (IR only, run by the interpreter), "host" (C for this CPU), an accelerator, or
    #: "tvm" / "tvm:<name or TVM target JSON>" (Apache TVM: targets/tvm/targets.py)
    target: str | None = None
    #: a profile file of your own chip (.toml/.json), instead of a target name
    target_file: str | os.PathLike[str] | None = None
    threads: int = 1
    cpu: str = "auto"
    cache_dir: str | os.PathLike[str] | None = None
    werror: bool = False
    extra_cflags: Sequence[str] = ()
    #: called as build_progress(done, total) as the C build's steps finish
    build_progress: Progress | None = None
    #: tvm targets: MetaSchedule trials to tune the kernels with (0: TVM's default
    #: schedules); the database is kept in the cache, so a later compile reuses it
    tune: int = 0
    #: with ``tune``: measure on the boards of this TVM RPC tracker, "host:port:key"
    tune_rpc: str | None = None
    #: called as tune_progress(trials measured, trials asked for) while tuning
    tune_progress: Progress | None = None
    #: receives tuning's messages (its time estimate first); None: the "qnnc.tvm" logger
    tune_log: Callable[[str], None] | None = None

    # -- the result
    #: a folder to write the compiled model into (atomically)
    output_dir: str | os.PathLike[str] | None = None
    #: replace output_dir even if it is not exactly a previous qnnc output (files qnnc did
    #: not write there are deleted); never follows a symbolic link (compiler/folders.py)
    force: bool = False

    def replace(self, **changes: Any) -> CompileOptions:
        """A copy with ``changes``; unknown names are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise QnncError(f"unknown compile option(s) {unknown}; the options are: "
                            f"{', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)

    @property
    def effective_precision(self) -> str:
        if self.precision is None:
            return "int8" if self.calibration is not None else "f32"
        return self.precision

    def resolved_weight_range(self) -> str:
        """The weight range the quantiser uses: ``weight_range``, with "auto" resolved for
        the target and CPU (see DEFAULT_WEIGHT_RANGE)."""
        if self.weight_range != "auto":
            return self.weight_range
        if self.target != "host" or self.target_file is not None:
            return "int8"
        from targets.host.cpu import effective_level

        return "paired" if effective_level(self.cpu) == "avx2" else "int8"

    def check(self) -> None:
        """Reject values no compile can use, with what to give instead."""
        if self.precision is not None and self.precision not in PRECISIONS:
            raise QnncError(f"precision must be one of {list(PRECISIONS)}, got "
                            f"{self.precision!r}")
        if self.max_tensor_bytes is not None and not (
                isinstance(self.max_tensor_bytes, int) and self.max_tensor_bytes > 0):
            raise QnncError(f"max_tensor_bytes must be a positive number of bytes, got "
                            f"{self.max_tensor_bytes!r}")
        if self.threads < 1:
            raise QnncError(f"threads must be >= 1, got {self.threads}")
        if self.target is not None and self.target_file is not None:
            raise QnncError("give either a target name or a target file, not both")
        tvm = self.target is not None and (self.target == "tvm" or
                                           self.target.startswith("tvm:"))
        if not isinstance(self.tune, int) or self.tune < 0:
            raise QnncError(f"tune must be a number of trials >= 0, got {self.tune!r}")
        if self.tune and not tvm:
            raise QnncError("tuning (--tune) is for the tvm targets: add --target tvm "
                            "(or tvm:<name>)")
        if self.tune_rpc is not None and not self.tune:
            raise QnncError("--tune-rpc says where to measure tuning trials: give --tune N "
                            "as well")
        if self.weight_range not in WEIGHT_RANGE_CHOICES:
            raise QnncError(f"weight_range must be one of {list(WEIGHT_RANGE_CHOICES)}, got "
                            f"{self.weight_range!r}")
        if (problem := percentile_problem(self.calib_percentile)) is not None:
            raise QnncError(f"calib_percentile: {problem}")
        if self.calibration is not None and self.precision == "f32":
            raise QnncError("calibration data (--calib, calibration=) applies to precision "
                            "int8; drop one of the two (calibration data alone means int8)")


def options_from(options: CompileOptions | None, kwargs: Mapping[str, Any]) -> CompileOptions:
    """``options`` (or the defaults) with the keyword arguments applied on top."""
    return (options or CompileOptions()).replace(**kwargs)


__all__ = ["CALIB_METHODS", "DEFAULT_CALIB_METHOD", "DEFAULT_WEIGHT_RANGE", "PRECISIONS",
           "WEIGHT_RANGES", "WEIGHT_RANGE_CHOICES", "CompileOptions", "options_from"]
