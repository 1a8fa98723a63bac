"""The pipeline a compile runs: the default for its target and precision, or the user's own,
with the compile's own data handed to the passes that take it.

The default is the target-independent clean-up (compiler.passes.DEFAULT_PIPELINE), then
``equalize`` when asked, then ``quantize`` for INT8, then ``fuse-epilogue`` for the host or
``layout,fold-layout,fuse-eltwise,keep-in-l2,tile`` for an accelerator target.
``qnnc compile --print-pipeline`` prints it for the options given, in text a user can edit
and pass back with ``--pipeline``.

The quantisation flags (--calib-method, --skip-layers, ...) set the options of the
pipeline's quantize pass, a user's pipeline included; a pipeline text that sets the same
option to something else is an error rather than a silent choice. Calibration data and
progress callbacks go to quantize, the target's profile to layout and tile when the text
names none.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from compiler.errors import QnncError
from compiler.options import CompileOptions
from compiler.passes import DEFAULT_PIPELINE, HOST_INT8_PIPELINE, TARGET_PIPELINE
from compiler.passes.manager import Pass, as_passes, format_pass
from compiler.passes.quantize import Quantize, QuantizeOutcome
from targets.profiles import Profile

#: compile option -> option of the quantize pass it sets
QUANTIZE_OPTIONS = {"calib_method": "method", "calib_percentile": "percentile",
                    "per_channel": "per_channel",
                    "weight_range": "weight_range", "smooth": "smooth",
                    "skip_layers": "skip_layers", "skip_op_types": "skip_op_types",
                    "min_sqnr_db": "min_sqnr", "max_drop": "max_drop"}
_DEFAULTS = CompileOptions()


def default_pipeline_text(options: CompileOptions, profile: Profile | None) -> list[str]:
    """The default pipeline for ``options`` as pass texts (before options are bound)."""
    steps = list(DEFAULT_PIPELINE)
    if options.equalize:
        # after the folds, so that equalisation sees the layers' final weights
        folds = [i for i, p in enumerate(steps) if p in ("fold-batchnorm", "fold-affine")]
        at = folds[-1] + 1 if folds else len(steps)
        steps[at:at] = ["equalize"]
    if options.effective_precision == "int8":
        steps.append("quantize")
        if profile is None and options.target == "host":
            steps += HOST_INT8_PIPELINE
    if profile is not None:
        steps += TARGET_PIPELINE
    return steps


def effective_pipeline(options: CompileOptions, profile: Profile | None,
                       outcome: QuantizeOutcome | None = None) -> list[Pass]:
    """The passes a compile with ``options`` runs, each with its options and data bound."""
    explicit = options.pipeline is not None
    passes = as_passes(options.pipeline if explicit else  # type: ignore[arg-type]
                       default_pipeline_text(options, profile))
    if options.equalize and explicit and not any(p.name == "equalize" for p in passes):
        raise QnncError("--equalize adds the equalize pass to the default pipeline; with "
                        "--pipeline, write equalize into the pipeline instead")
    return [_bind(p, options, profile, outcome) for p in passes]


def _bind(p: Pass, options: CompileOptions, profile: Profile | None,
          outcome: QuantizeOutcome | None) -> Pass:
    if isinstance(p, Quantize):
        changes: dict[str, Any] = {}
        for ours, theirs in QUANTIZE_OPTIONS.items():
            value = getattr(options, ours)
            if ours == "weight_range" and value == "auto":
                # the default yields to a pipeline that names its own weight range
                if p.weight_range != _field_default(Quantize, theirs):
                    continue
                value = options.resolved_weight_range()
                if value == _field_default(Quantize, theirs):
                    continue
            if isinstance(value, list):
                value = tuple(value)
            if value == getattr(_DEFAULTS, ours) or value == ():
                continue
            default = _field_default(Quantize, theirs)
            if getattr(p, theirs) not in (default, value):
                raise QnncError(f"the pipeline's {format_pass(p)} sets {theirs} to "
                                f"{getattr(p, theirs)!r}, the options to {value!r}; give one")
            changes[theirs] = tuple(value) if isinstance(value, (list, tuple)) else value
        return dataclasses.replace(p, calibration=options.calibration,
                                   eval_data=options.eval_data, progress=options.progress,
                                   outcome=outcome, **changes)
    if "target" in {f.name for f in dataclasses.fields(p)}:
        have = p.target  # type: ignore[attr-defined]
        if have is None:
            if profile is None:
                return p  # reports that it needs a target when it runs
            return dataclasses.replace(p, target=profile)  # type: ignore[call-arg]
        if profile is not None and have.name != profile.name:
            raise QnncError(f"the pipeline's {format_pass(p)} works for {have.name!r}, but the "
                            f"compile targets {profile.name!r}")
    return p


def _field_default(cls: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def check_pipeline(passes: list[Pass], options: CompileOptions, profile: Profile | None,
                   prequantised: bool) -> None:
    """Refuse a pipeline that cannot give what the options ask for."""
    names = {p.name for p in passes if p.name not in options.disabled_passes}
    if options.effective_precision == "int8" and "quantize" not in names and not prequantised:
        raise QnncError("INT8 needs the quantize pass, which the pipeline does not run; add "
                        "quantize to --pipeline (or drop --precision int8)")
    if profile is not None:
        if "fuse-epilogue" in names:
            raise QnncError(f"fuse-epilogue is a host pass: target {profile.name!r} stages "
                            "products through the chip's buffers without epilogue tables; "
                            "drop fuse-epilogue from --pipeline")
        if "tile" not in names:
            raise QnncError(f"target {profile.name!r} needs the layout and tile passes, which "
                            "the pipeline does not run; add layout,fold-layout,tile")
        if "quantize" not in names and not prequantised:
            raise QnncError(f"target {profile.name!r} runs INT8 kernels: compile with "
                            "--precision int8 and calibration data (--calib), or give a "
                            "pre-quantised model")
