"""One golden folder: run a compiled model on stored inputs, record what it computes, and
check it again later (the layout is in the package docstring).

This is what the pytest plugin reads and writes; a golden set holds one such folder per
target.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler.api import CompiledModel, qnnc_version, write_folder_atomically
from compiler.errors import QnncError
from compiler.golden.compare import OutputReport, Tolerance, compare_output, default_tolerance
from compiler.golden.facts import INTERP, ir_hash, model_precision, quant_steps, target_of

FORMAT = 1
MANIFEST = "manifest.json"
INPUTS = "inputs.npz"
OUTPUTS = "outputs.npz"


class GoldenError(QnncError):
    """A golden folder is missing, incomplete, or not one qnnc wrote."""


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

    def as_dict(self) -> dict[str, Any]:
        """The result as `qnnc golden check --json` prints it."""
        return {"folder": str(self.folder), "target": self.target, "precision": self.precision,
                "passed": self.passed, "updated": self.updated, "problems": self.problems,
                "notes": self.notes,
                "outputs": [{"name": o.name, "ok": o.ok, "summary": o.summary,
                             "details": o.details} for o in self.outputs]}

    def report(self) -> str:
        verdict = "UPDATED" if self.updated else ("ok" if self.passed else "FAIL")
        lines = [f"golden {self.folder} ({self.target}, {self.precision}): {verdict}"]
        lines += [f"  {p}" for p in self.problems]
        lines += ["  " + o.format().replace("\n", "\n  ") for o in self.outputs]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def manifest_text(data: Mapping[str, Any]) -> str:
    """JSON with one key per line but short lists (shapes, names) kept on one line, so a
    changed golden reads as a short diff."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return text + "\n"


def write_manifest(folder: Path, data: Mapping[str, Any]) -> None:
    """A golden manifest in :func:`manifest_text`'s format."""
    (folder / MANIFEST).write_text(manifest_text(data))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a golden folder or set, refusing anything qnnc did not write."""
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
    """The arrays of an .npz, refusing pickled objects (a golden holds only plain arrays)."""
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


def tolerance_of(entry: Mapping[str, Any]) -> Tolerance | None:
    """The tolerance an output entry of a manifest states (None: exact)."""
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
        **({"calibration": cm.calibration} if cm.calibration else {}),
        "inputs": [{"name": k, "dtype": v.dtype.name, "shape": list(v.shape)}
                   for k, v in feeds.items()],
        "outputs": entries,
    }

    def fill(tmp: Path) -> None:
        save_arrays(tmp / INPUTS, feeds)
        save_arrays(tmp / OUTPUTS, outs)
        write_manifest(tmp, manifest)

    return write_folder_atomically(Path(folder), fill, dump=manifest_text)


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
    man = read_manifest(folder)
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
    res.notes += _calibration_notes(man.get("calibration"), cm.calibration)
    tols = {o["name"]: _override(tolerance_of(o), rtol, atol) for o in man.get("outputs", [])}
    if not res.problems:
        got = dict(zip(cm.output_names, cm.run(None, recorded_in)))
        steps = quant_steps(cm.graph)
        res.notes += _step_notes(man.get("outputs", []), steps)
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


#: the percentile of every record made before records said it (qnnc's only one until then)
PERCENTILE_BEFORE_RECORDED = 99.99


def _calibration_notes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
                       ) -> list[str]:
    """A note when the calibration that quantised the model is not the recorded one: its
    samples' hash or count, the method (for ``auto``, the one it chose) or its percentile
    changed (output differences may come from it). A record made before the percentile was
    recorded was calibrated at 99.99, the only percentile qnnc had then."""
    if not old or not new:
        return []
    if "percentile" not in old and old.get("method") in ("percentile", "layerwise", "auto"):
        old = {**old, "percentile": PERCENTILE_BEFORE_RECORDED}
    # auto's ranges are those of the method it chose: compare what the scales came from
    old, new = ({**c, "method": c.get("chosen") or c.get("method")} for c in (old, new))
    changed = [f"{k} {old.get(k)!s:.12} -> {new.get(k)!s:.12}"
               for k in ("method", "percentile", "samples", "samples_sha256")
               if old.get(k) != new.get(k)]
    if not changed:
        return []
    return ["calibration changed since recording (" + ", ".join(changed) + "): the scales "
            "are recomputed, so the outputs may differ for that reason alone"]


def _step_notes(entries: Sequence[Mapping[str, Any]], steps: Mapping[str, float]
                ) -> list[str]:
    """A note per INT8 output whose quantisation step is not the recorded one: the output's
    scale itself moved, so every code means another value (errors are stated in new steps)."""
    notes = []
    for e in entries:
        old, new = e.get("quant_step"), steps.get(str(e.get("name")))
        if old is not None and new is not None and float(old) != float(new):
            notes.append(f"output {e['name']!r}: its quantisation step (output scale) changed "
                         f"from {float(old):.6g} to {new:.6g} ({new / float(old):.4g}x); the "
                         "error in steps below is in the new step")
    return notes

