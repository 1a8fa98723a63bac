"""Golden sets: what ``qnnc golden record`` writes and ``qnnc golden check`` replays.

A set holds a copy of the model, the compile options, INT8 calibration samples and one
golden folder per target, so it can be recompiled and checked without the user's files
(the layout is in the package docstring).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler import api
from compiler.api import CompiledModel, ModelLike, qnnc_version, write_folder_atomically
from compiler.errors import ModelLoadError, QnncError
from compiler.folders import check_output_folder
from compiler.golden.facts import INTERP, compile_target, golden_targets
from compiler.golden.folder import (
    FORMAT,
    INPUTS,
    PERCENTILE_BEFORE_RECORDED,
    GoldenError,
    GoldenResult,
    check_outputs,
    load_arrays,
    manifest_text,
    read_manifest,
    record_outputs,
    save_arrays,
    tolerance_of,
    write_manifest,
)
from compiler.quant.observers import DEFAULT_PERCENTILE

MODEL = "model.onnx"
CALIB = "calib.npz"
EVAL = "eval.npz"  # held-out samples for an accuracy budget (min_sqnr_db / max_drop)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in chunks (a model can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class GoldenOptions:
    """How the model is compiled; stored in the set's manifest and replayed by check."""

    precision: str = "f32"
    calib_method: str = api.DEFAULT_CALIB_METHOD
    #: the percentile method's P (compile's calib_percentile); a set recorded before the
    #: option existed replays with the 99.99 it was calibrated with (see load_options)
    calib_percentile: float = DEFAULT_PERCENTILE
    skip_layers: list[str] = field(default_factory=list)
    skip_op_types: list[str] = field(default_factory=list)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    disabled_passes: list[str] = field(default_factory=list)
    threads: int = 1
    cpu: str = "auto"
    equalize: bool = False
    #: SmoothQuant strength (compile's smooth); 0 in sets recorded before it existed
    smooth: float = 0.0
    per_channel: bool = True
    #: a set recorded before the option existed replays with the codes it was made with;
    #: record_set stores "auto" resolved (for this machine's host code, if a target is the
    #: host), so that every machine replays the same weight codes
    weight_range: str = "int8"
    pipeline: str | None = None
    max_tensor_bytes: int | None = None
    #: the stored copy of a --target-file chip profile, inside the set (target.toml/.json)
    target_file: str | None = None
    #: an accuracy budget: the most sensitive layers stay f32 until it holds (on EVAL)
    min_sqnr_db: float | None = None
    max_drop: float | None = None

    def compile(self, model: ModelLike, target: str, calibration: Any,
                target_file: Path | None = None, eval_data: Any = None) -> CompiledModel:
        """Compile for one golden target: the same call when recording and when checking.
        ``target_file`` is the chip profile behind a target that is not built in;
        ``eval_data`` the held-out samples an accuracy budget is measured on."""
        custom = target_file is not None and target not in golden_targets()
        return api.compile_model(
            model, input_shapes={k: tuple(v) for k, v in self.input_shapes.items()} or None,
            disabled_passes=self.disabled_passes,
            target=None if custom else compile_target(target),
            target_file=target_file if custom else None,
            threads=self.threads, cpu=self.cpu, precision=self.precision,
            calibration=calibration, calib_method=self.calib_method,
            calib_percentile=self.calib_percentile,
            skip_layers=self.skip_layers, skip_op_types=self.skip_op_types,
            equalize=self.equalize, smooth=self.smooth, per_channel=self.per_channel,
            weight_range=self.weight_range, pipeline=self.pipeline,
            max_tensor_bytes=self.max_tensor_bytes, eval_data=eval_data,
            min_sqnr_db=self.min_sqnr_db, max_drop=self.max_drop,
        )


def load_options(stored: Mapping[str, Any]) -> GoldenOptions:
    """A set's stored options; a set recorded before an option existed gets the value it was
    recorded with, not today's default (so its goldens still replay)."""
    return GoldenOptions(**{"calib_percentile": PERCENTILE_BEFORE_RECORDED, **stored})


def stack_calibration(source: Any, model: ModelLike, options: GoldenOptions
                      ) -> dict[str, np.ndarray]:
    """Calibration samples from any supported source, stacked on a new leading axis — the
    one canonical form stored in a golden set."""
    from compiler.quant.calib_data import calibration_data

    graph = api.load_model(model, {k: tuple(v) for k, v in options.input_shapes.items()} or None)
    samples = list(calibration_data(source, graph))
    return {v.name: np.stack([s[v.name] for s in samples]) for v in graph.inputs}


def record_set(
    model: str | os.PathLike[str], out_dir: str | os.PathLike[str], targets: Sequence[str],
    inputs: Mapping[str, Any] | Callable[[CompiledModel], Mapping[str, Any]],
    options: GoldenOptions, *, calibration: Any = None, rtol: float | None = None,
    atol: float | None = None, force: bool = False,
    target_file: str | os.PathLike[str] | None = None, eval_data: Any = None,
) -> list[Path]:
    """Compile ``model`` for each target, run it on ``inputs`` (or on ``inputs(cm)``) and
    write the golden set ``out_dir`` atomically (an existing folder only if it is a previous
    set, unless ``force``). ``target_file`` (a chip profile, .toml or .json) adds a target
    named after its profile; the set keeps a copy. ``eval_data`` (held-out samples for the
    options' accuracy budget) is stored too. Returns the per-target folders."""
    check_output_folder(Path(out_dir), force)
    targets = list(dict.fromkeys(targets))
    if options.weight_range == "auto":
        host = "host" if "host" in targets else None
        options.weight_range = api.CompileOptions(
            target=host, cpu=options.cpu, weight_range="auto").resolved_weight_range()
    chip: Path | None = None
    if target_file is not None:
        from targets.profiles import load_target

        chip = Path(target_file)
        name = load_target(chip).name
        if name in targets or name in golden_targets():
            raise QnncError(f"the profile in {str(chip)!r} is named {name!r}, like a built-in "
                            "target: rename it in the file to record both")
        options.target_file = "target" + chip.suffix.lower()
        targets.append(name)
    targets = targets or [INTERP]
    for t in targets:
        if chip is None or t != targets[-1]:
            compile_target(t)
    calib = None
    if options.precision == "int8":
        if calibration is None:
            raise QnncError("recording an INT8 golden needs calibration data (--calib)")
        calib = stack_calibration(calibration, model, options)
    held_out = None
    if eval_data is not None:
        if options.precision != "int8":
            raise QnncError("held-out data (--eval) applies to INT8 goldens; give --calib too")
        held_out = stack_calibration(eval_data, model, options)
    compiled = [options.compile(model, t, calib, chip, held_out) for t in targets]
    feeds = inputs(compiled[0]) if callable(inputs) else inputs
    source = os.fspath(model)

    def fill(tmp: Path) -> None:
        shutil.copyfile(source, tmp / MODEL)
        if chip is not None and options.target_file:
            shutil.copyfile(chip, tmp / options.target_file)
        if held_out is not None:
            save_arrays(tmp / EVAL, held_out)
        if calib is not None:
            save_arrays(tmp / CALIB, calib)
        for t, cm in zip(targets, compiled):
            record_outputs(cm, feeds, tmp / t, rtol=rtol, atol=atol,
                           extra={"options": asdict(options)})
        _write_set_manifest(tmp, source, targets, options)

    write_folder_atomically(Path(out_dir), fill, force=force, dump=manifest_text)
    return [Path(out_dir) / t for t in targets]


def _write_set_manifest(folder: Path, source: str, targets: Sequence[str],
                        options: GoldenOptions) -> None:
    calib = folder / CALIB
    manifest = {
        "format": FORMAT, "kind": "qnnc-golden-set", "qnnc_version": qnnc_version(),
        "model": {"file": MODEL, "sha256": file_sha256(folder / MODEL), "source": source,
                  "source_sha256": file_sha256(folder / MODEL)},
        "calibration": ({"file": CALIB, "sha256": file_sha256(calib)} if calib.exists()
                        else None),
        "options": asdict(options), "targets": list(targets),
    }
    write_manifest(folder, manifest)


def check_set(
    golden_dir: str | os.PathLike[str], *, targets: Sequence[str] | None = None,
    model: str | os.PathLike[str] | None = None, update: bool = False,
    calibration: Any = None,
) -> list[GoldenResult]:
    """Recompile the set's model (or ``model``, another file) with the recorded options for
    each recorded target (or the ``targets`` named) and compare. ``calibration`` (any
    source compile takes) replaces the stored samples of an INT8 set. ``update`` rewrites
    the whole set atomically when anything failed — with ``model`` or ``calibration`` they
    also become the stored copies."""
    root = Path(golden_dir)
    man = read_manifest(root)
    if man.get("kind") != "qnnc-golden-set":
        raise GoldenError(
            f"{str(root)!r} is a single golden folder, not a golden set from `qnnc golden "
            "record`; check it from the test that wrote it")
    recorded = list(man.get("targets", []))
    chosen = list(targets) if targets else recorded
    missing = [t for t in chosen if t not in recorded]
    if missing:
        raise QnncError(f"{str(root)!r} has no golden for target(s) {missing}; it holds: "
                        f"{', '.join(recorded)}")
    options = load_options(man.get("options", {}))
    model_path = Path(model) if model is not None else root / MODEL
    if not model_path.is_file():
        raise ModelLoadError(f"model {str(model_path)!r} does not exist")
    notes = _model_notes(root, man, model_path, model is not None)
    calib: Any = root / CALIB if (root / CALIB).exists() else None
    if calibration is not None:
        if options.precision != "int8":
            raise QnncError(f"{str(root)!r} holds {options.precision} goldens; calibration "
                            "data only applies to an INT8 set")
        calib = stack_calibration(calibration, model_path, options)
    chip = root / options.target_file if options.target_file else None
    held_out = root / EVAL if (root / EVAL).exists() else None
    results = []
    for t in chosen:
        cm = options.compile(model_path, t, calib, chip, held_out)
        res = check_outputs(cm, root / t)
        res.notes = notes + res.notes
        results.append(res)
    if update and not all(r.passed for r in results):
        _rewrite_set(root, man, model_path, chosen, options, results, calib)
    return results


def _model_notes(root: Path, man: Mapping[str, Any], model_path: Path, given: bool) -> list[str]:
    info = man.get("model", {})
    notes = []
    sha = file_sha256(model_path)
    if sha != info.get("sha256"):
        what = f"the model {str(model_path)!r}" if given else f"the stored copy {MODEL}"
        notes.append(f"{what} differs from the recorded model (sha256 {sha[:12]} vs "
                     f"{str(info.get('sha256'))[:12]})")
    src = Path(str(info.get("source", "")))
    if not given and src.is_file() and file_sha256(src) != info.get("source_sha256"):
        notes.append(f"the source model {str(src)!r} changed since recording; this check "
                     f"uses the stored copy (check the new one with --model {src})")
    return notes


def _rewrite_set(root: Path, man: Mapping[str, Any], model_path: Path, chosen: Sequence[str],
                 options: GoldenOptions, results: list[GoldenResult], calib: Any) -> None:
    """``calib``: the stored samples' path, the new stacked samples, or None (f32)."""
    targets = list(man.get("targets", []))

    def fill(tmp: Path) -> None:
        shutil.copyfile(model_path, tmp / MODEL)
        if isinstance(calib, Path):
            shutil.copyfile(calib, tmp / CALIB)
        elif calib is not None:
            save_arrays(tmp / CALIB, calib)
        chip = None
        if options.target_file:
            chip = tmp / options.target_file
            shutil.copyfile(root / options.target_file, chip)
        held_out = None
        if (root / EVAL).exists():
            held_out = tmp / EVAL
            shutil.copyfile(root / EVAL, held_out)
        new_calib = calib is not None and not isinstance(calib, Path)
        for t in targets:
            if t not in chosen and not new_calib:  # new samples: every target re-recorded
                shutil.copytree(root / t, tmp / t)
                continue
            old = read_manifest(root / t)
            tols = {o["name"]: tolerance_of(o) for o in old.get("outputs", [])}
            cm = options.compile(tmp / MODEL, t, calib, chip, held_out)
            record_outputs(cm, load_arrays(root / t / INPUTS), tmp / t, tolerances=tols,
                           extra={"options": asdict(options)})
        _write_set_manifest(tmp, str(man.get("model", {}).get("source", model_path)),
                            targets, options)

    write_folder_atomically(root, fill, dump=manifest_text)
    for r in results:
        r.updated = r.updated or not r.passed
