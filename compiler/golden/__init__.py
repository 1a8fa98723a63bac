"""Golden outputs: record what a compiled model computes, and catch any later change.

A golden test pins the outputs of one model, compiled one way, for one target, on stored
inputs. When a compiler change alters them, the check says which output moved, where (the
first few multi-indices), by how much (worst absolute and relative error), and whether the
compiled IR changed too. Intended changes are accepted by rewriting the golden (``update``).

**One golden folder** (what :func:`check_outputs` reads and the pytest plugin writes)::

    FOLDER/manifest.json   qnnc version, target, precision, options, IR hash, and per output
                           its dtype, shape and how it is compared (exact, or rtol/atol)
    FOLDER/inputs.npz      the feeds, keyed by input name
    FOLDER/outputs.npz     the recorded outputs, keyed by output name

**A golden set** (what ``qnnc golden record`` writes, :func:`record_set` / :func:`check_set`)
adds what is needed to recompile without the user's files::

    DIR/manifest.json      the set: model file + sha256 + source path, options, targets
    DIR/model.onnx         a copy of the model: the golden stays checkable when the original
                           moves or changes (the source path and its sha256 are kept only
                           to say so)
    DIR/calib.npz          INT8 only: the calibration samples, stacked on a leading axis
    DIR/<target>/          one golden folder per target (interp, host, ...)

How outputs compare, and how tolerances are kept: :mod:`compiler.golden.compare`.

Every write is atomic: a failure leaves the previous golden.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler import api
from compiler.api import CompiledModel, ModelLike, qnnc_version, write_folder_atomically
from compiler.errors import ModelLoadError, QnncError
from compiler.golden.compare import DEFAULT_ATOL as DEFAULT_ATOL
from compiler.golden.compare import DEFAULT_RTOL as DEFAULT_RTOL
from compiler.golden.compare import MAX_POSITIONS as MAX_POSITIONS
from compiler.golden.compare import (
    OutputReport,
    Tolerance,
    compare_output,
    default_tolerance,
)
from compiler.golden.facts import INTERP as INTERP
from compiler.golden.facts import compile_target as compile_target
from compiler.golden.facts import golden_targets, ir_hash
from compiler.golden.facts import model_precision as model_precision
from compiler.golden.facts import quant_steps as quant_steps
from compiler.golden.facts import target_of as target_of

FORMAT = 1


class GoldenError(QnncError):
    """A golden folder is missing, incomplete, or not one qnnc wrote."""

MANIFEST = "manifest.json"
INPUTS = "inputs.npz"
OUTPUTS = "outputs.npz"
MODEL = "model.onnx"
CALIB = "calib.npz"


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- results ------------------------------------------------------------------------------------
@dataclass
class GoldenResult:
    """The outcome of checking one golden folder."""

    folder: Path
    target: str
    precision: str
    outputs: list[OutputReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures besides output mismatches
    notes: list[str] = field(default_factory=list)  # worth knowing, not failures
    updated: bool = False

    @property
    def passed(self) -> bool:
        return not self.problems and all(o.ok for o in self.outputs)

    def report(self) -> str:
        verdict = "UPDATED" if self.updated else ("ok" if self.passed else "FAIL")
        lines = [f"golden {self.folder} ({self.target}, {self.precision}): {verdict}"]
        lines += [f"  {p}" for p in self.problems]
        lines += ["  " + o.format().replace("\n", "\n  ") for o in self.outputs]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- one golden folder ----------------------------------------------------------------------
def _dump(data: Mapping[str, Any]) -> str:
    """JSON with one key per line but short lists (shapes, names) kept on one line."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise GoldenError(f"{str(folder)!r} is not a golden folder (it has no {MANIFEST})")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GoldenError(f"{str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or "qnnc_version" not in data:
        raise GoldenError(f"{str(path)!r} was not written by qnnc golden")
    return data


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An .npz numpy can read, byte-identical for identical arrays (fixed timestamps), so
    rewriting an unchanged golden leaves version control with nothing to show."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a), allow_pickle=False)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise GoldenError(f"cannot read golden data {str(path)!r}: {e}") from None


def conform_inputs(cm: CompiledModel, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The feeds as the model takes them (validated, in the input dtypes)."""
    cm.run(None, inputs)  # raises InputError with a readable message if they do not fit
    types = cm.input_types
    return {k: np.ascontiguousarray(np.asarray(inputs[k]).astype(types[k].dtype.np))
            for k in cm.input_names}


def _tol_entry(tol: Tolerance | None) -> dict[str, Any]:
    return {"compare": "exact"} if tol is None else {"compare": "tolerance", **asdict(tol)}


def _tol_of(entry: Mapping[str, Any]) -> Tolerance | None:
    if entry.get("compare", "exact") == "exact":
        return None
    return Tolerance(float(entry["rtol"]), float(entry["atol"]))


def _override(tol: Tolerance | None, rtol: float | None, atol: float | None
              ) -> Tolerance | None:
    if tol is None or (rtol is None and atol is None):
        return tol
    return Tolerance(tol.rtol if rtol is None else rtol, tol.atol if atol is None else atol)


def record_outputs(
    cm: CompiledModel, inputs: Mapping[str, Any], folder: str | os.PathLike[str], *,
    rtol: float | None = None, atol: float | None = None,
    tolerances: Mapping[str, Tolerance | None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Run ``cm`` on ``inputs`` and write a golden folder (atomically). ``rtol``/``atol``
    override the defaults for float outputs; ``tolerances`` (per output, e.g. the ones of
    the golden being updated) override both; ``extra`` goes into the manifest."""
    feeds = conform_inputs(cm, inputs)
    outs = dict(zip(cm.output_names, cm.run(None, feeds)))
    precision = model_precision(cm.graph)
    steps = quant_steps(cm.graph)
    entries = []
    for name, a in outs.items():
        tol = _override(default_tolerance(a.dtype, precision), rtol, atol)
        if tolerances is not None and name in tolerances:
            tol = tolerances[name]
        step = {"quant_step": steps[name]} if name in steps else {}
        entries.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape),
                        **_tol_entry(tol), **step})
    manifest = {
        "format": FORMAT, "kind": "qnnc-golden", "qnnc_version": qnnc_version(),
        "target": target_of(cm), "precision": precision, "pipeline": cm.pipeline,
        "ir_hash": ir_hash(cm.graph), **dict(extra or {}),
        "inputs": [{"name": k, "dtype": v.dtype.name, "shape": list(v.shape)}
                   for k, v in feeds.items()],
        "outputs": entries,
    }

    def fill(tmp: Path) -> None:
        save_arrays(tmp / INPUTS, feeds)
        save_arrays(tmp / OUTPUTS, outs)
        (tmp / MANIFEST).write_text(_dump(manifest))

    return write_folder_atomically(Path(folder), fill)


def check_outputs(
    cm: CompiledModel, folder: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None,
    *, update: bool = False, extra: Mapping[str, Any] | None = None,
    rtol: float | None = None, atol: float | None = None,
) -> GoldenResult:
    """Run ``cm`` on the golden's inputs and compare with its outputs. ``inputs``, when
    given, must equal the recorded ones (a changed input is not a compiler regression).
    ``rtol``/``atol`` replace the recorded float tolerances. With ``update`` a failing
    golden is rewritten (keeping its tolerances)."""
    folder = Path(folder)
    man = _read_manifest(folder)
    precision = model_precision(cm.graph)
    res = GoldenResult(folder, target_of(cm), precision)
    recorded_in = load_arrays(folder / INPUTS)
    expected = load_arrays(folder / OUTPUTS)
    if man.get("target", INTERP) != res.target:
        res.problems.append(f"recorded for target {man.get('target')!r}, checked on "
                            f"{res.target!r}")
    if inputs is not None:
        given = conform_inputs(cm, inputs)
        for k in sorted(set(given) | set(recorded_in)):
            a, b = given.get(k), recorded_in.get(k)
            if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b):
                res.problems.append(f"input {k!r} differs from the recorded one; the golden "
                                    "was recorded on other data")
    old_hash, new_hash = man.get("ir_hash", ""), ir_hash(cm.graph)
    res.notes.append("IR unchanged" if old_hash == new_hash else
                     f"IR hash changed: {old_hash[:12]} -> {new_hash[:12]}")
    if man.get("qnnc_version") != qnnc_version():
        res.notes.append(f"recorded with qnnc {man.get('qnnc_version')}, now {qnnc_version()}")
    tols = {o["name"]: _override(_tol_of(o), rtol, atol) for o in man.get("outputs", [])}
    if not res.problems:
        got = dict(zip(cm.output_names, cm.run(None, recorded_in)))
        steps = quant_steps(cm.graph)
        for name in [n for n in got if n not in expected]:
            res.problems.append(f"output {name!r} is new (not in the golden)")
        for name, want in expected.items():
            if name not in got:
                res.problems.append(f"output {name!r} is recorded but the model lacks it")
                continue
            res.outputs.append(compare_output(name, want, got[name], tols.get(name),
                                              steps.get(name)))
    if update and not res.passed:
        record_outputs(cm, recorded_in if inputs is None else inputs, folder,
                       tolerances={k: v for k, v in tols.items()}, extra=extra)
        res.updated = True
    return res


# -- a golden set: model copy + options + one folder per target -------------------------------
@dataclass
class GoldenOptions:
    """How the model is compiled; stored in the set's manifest and replayed by check."""

    precision: str = "f32"
    calib_method: str = api.DEFAULT_CALIB_METHOD
    skip_layers: list[str] = field(default_factory=list)
    skip_op_types: list[str] = field(default_factory=list)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    disabled_passes: list[str] = field(default_factory=list)
    threads: int = 1
    cpu: str = "auto"

    def compile(self, model: ModelLike, target: str, calibration: Any) -> CompiledModel:
        return api.compile_model(
            model, input_shapes={k: tuple(v) for k, v in self.input_shapes.items()} or None,
            disabled_passes=self.disabled_passes, target=compile_target(target),
            threads=self.threads, cpu=self.cpu, precision=self.precision,
            calibration=calibration, calib_method=self.calib_method,
            skip_layers=self.skip_layers, skip_op_types=self.skip_op_types,
        )


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
    atol: float | None = None,
) -> list[Path]:
    """Compile ``model`` for each target, run it on ``inputs`` (or on ``inputs(cm)``) and
    write the golden set ``out_dir`` atomically. Returns the per-target folders."""
    targets = list(dict.fromkeys(targets)) or [INTERP]
    for t in targets:
        compile_target(t)
    calib = None
    if options.precision == "int8":
        if calibration is None:
            raise QnncError("recording an INT8 golden needs calibration data (--calib)")
        calib = stack_calibration(calibration, model, options)
    compiled = [options.compile(model, t, calib) for t in targets]
    feeds = inputs(compiled[0]) if callable(inputs) else inputs
    source = os.fspath(model)

    def fill(tmp: Path) -> None:
        shutil.copyfile(source, tmp / MODEL)
        if calib is not None:
            save_arrays(tmp / CALIB, calib)
        for t, cm in zip(targets, compiled):
            record_outputs(cm, feeds, tmp / t, rtol=rtol, atol=atol,
                           extra={"options": asdict(options)})
        _write_set_manifest(tmp, source, targets, options)

    write_folder_atomically(Path(out_dir), fill)
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
    (folder / MANIFEST).write_text(_dump(manifest))


def check_set(
    golden_dir: str | os.PathLike[str], *, targets: Sequence[str] | None = None,
    model: str | os.PathLike[str] | None = None, update: bool = False,
) -> list[GoldenResult]:
    """Recompile the set's model (or ``model``, another file) with the recorded options for
    each recorded target (or the ``targets`` named) and compare. ``update`` rewrites the
    whole set atomically when anything failed — with ``model`` it also becomes the copy."""
    root = Path(golden_dir)
    man = _read_manifest(root)
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
    options = GoldenOptions(**man.get("options", {}))
    model_path = Path(model) if model is not None else root / MODEL
    if not model_path.is_file():
        raise ModelLoadError(f"model {str(model_path)!r} does not exist")
    notes = _model_notes(root, man, model_path, model is not None)
    calib = root / CALIB if (root / CALIB).exists() else None
    results = []
    for t in chosen:
        cm = options.compile(model_path, t, calib)
        res = check_outputs(cm, root / t)
        res.notes = notes + res.notes
        results.append(res)
    if update and not all(r.passed for r in results):
        _rewrite_set(root, man, model_path, chosen, options, results)
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
                 options: GoldenOptions, results: list[GoldenResult]) -> None:
    calib = root / CALIB if (root / CALIB).exists() else None
    targets = list(man.get("targets", []))

    def fill(tmp: Path) -> None:
        shutil.copyfile(model_path, tmp / MODEL)
        if calib is not None:
            shutil.copyfile(calib, tmp / CALIB)
        for t in targets:
            if t not in chosen:
                shutil.copytree(root / t, tmp / t)
                continue
            old = _read_manifest(root / t)
            tols = {o["name"]: _tol_of(o) for o in old.get("outputs", [])}
            cm = options.compile(tmp / MODEL, t, calib)
            record_outputs(cm, load_arrays(root / t / INPUTS), tmp / t, tolerances=tols,
                           extra={"options": asdict(options)})
        _write_set_manifest(tmp, str(man.get("model", {}).get("source", model_path)),
                            targets, options)

    write_folder_atomically(root, fill)
    for r in results:
        r.updated = r.updated or not r.passed


__all__ = [
    "GoldenError", "GoldenOptions", "GoldenResult", "OutputReport", "Tolerance", "check_outputs",
    "check_set", "compare_output", "golden_targets", "ir_hash", "record_outputs", "record_set",
]
