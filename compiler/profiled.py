"""A model compiled for several shape profiles: one folder, one built module, weights stored
once, and ``run()`` picking the profile that matches the feeds.

Compiling: the model is imported once per profile (compiler/shape_profiles.py) and the passes
before ``quantize`` run on each; calibration then runs once over all the samples, each on
the float graph of exactly its own shape (samples need not have a profile's shape), so
every profile is quantised with the same ranges and the same weight codes; the remaining
passes (layout and tiling on an accelerator) run per profile, and the C of all profiles is
generated into one module whose weights are shared (targets/c/model.generate_profiles).

The folder holds ``profile_<k>.ir`` per profile with one ``profiles.ir.npz`` for the large
constants they all refer to, the built module and its sources, and a manifest listing the
profiles; accelerator targets get one report section per profile.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from onnx import ModelProto

from compiler.compiled import (
    MANIFEST_FORMAT,
    CompiledModel,
    _io_entry,
    check_run_arguments,
    qnnc_version,
    quantisation_manifest,
)
from compiler.errors import InputError, ModelLoadError, QnncError
from compiler.folders import MANIFEST_FILE, write_folder_atomically
from compiler.frontend.importer import import_model
from compiler.options import CompileOptions
from compiler.passes import run_pipeline
from compiler.passes.manager import Pass
from compiler.passes.quantize import Quantize, QuantizeOutcome, prequantised
from compiler.quant.calib_data import InputPattern
from compiler.shape_profiles import InputSig, Shapes, pick, profile_text
from ir.domain import check_domain
from ir.graph import Graph
from ir.text.files import load_blobs, save_blobs
from ir.text.parser import parse_graph
from ir.text.printer import print_graph
from ir.types import DType
from ir.verifier import verify

BLOBS_FILE = "profiles.ir.npz"
#: float graphs kept for calibration samples whose shape is no profile's
_SHAPE_CACHE = 4


def profile_ir_file(k: int) -> str:
    return f"profile_{k}.ir"


class ProfiledModel(CompiledModel):
    """A compiled model with one variant per shape profile; ``run`` picks the variant whose
    input shapes equal the feeds' (with ``pad_to_profile``, the smallest at least as large,
    the feeds padded with zeros at the end of each dimension). ``graph`` and the input and
    output types are those of the first profile; ``variants[k]`` is profile k's own
    CompiledModel (its graph, plans, report and counters)."""

    def __init__(self, variants: list[CompiledModel], profiles: list[Shapes], *,
                 pad_to_profile: bool = False, signature: Sequence[InputSig] = ()) -> None:
        first = variants[0]
        super().__init__(first.graph, source=first.source, pipeline=first.pipeline,
                         target=first.target, build=None)
        self.build = first.build
        self.profile = first.profile
        self.variants = variants
        self.profiles = profiles
        self.pad_to_profile = pad_to_profile
        self.signature = list(signature)
        #: the profile the last run() used
        self.last_profile: int | None = None

    @property
    def allow_nonfinite(self) -> bool:
        return all(v.allow_nonfinite for v in getattr(self, "variants", ()))

    @allow_nonfinite.setter
    def allow_nonfinite(self, value: bool) -> None:
        for v in getattr(self, "variants", ()):
            v.allow_nonfinite = value

    def __repr__(self) -> str:
        shown = "; ".join(profile_text(p) for p in self.profiles)
        return f"<CompiledModel with {len(self.profiles)} shape profiles ({shown})>"

    def run(self, output_names: Sequence[str] | None,
            feeds: Mapping[str, Any]) -> list[np.ndarray]:
        check_run_arguments(output_names, feeds)
        known = set(self.input_names)
        bad = sorted(str(k) for k in feeds if k not in known)
        if bad:
            raise InputError(f"unknown input name(s) {bad}; the model's inputs are "
                             f"{self.input_names}")
        arrays = {n: np.asarray(v) for n, v in feeds.items()}
        k, padded = pick(self.profiles, {n: a.shape for n, a in arrays.items()},
                         self.pad_to_profile)
        if padded:
            arrays = {n: _pad_to(a, self.profiles[k][n]) for n, a in arrays.items()}
        self.last_profile = k
        return self.variants[k].run(output_names, arrays)

    def counters(self) -> dict[str, dict[str, int]]:
        """Accelerator targets: the counters of every profile's layers, keyed
        ``"<profile>/<layer>"`` (``variants[k].counters()`` has one profile's)."""
        out: dict[str, dict[str, int]] = {}
        for prof, v in zip(self.profiles, self.variants):
            out.update({f"{profile_text(prof)}/{k}": c for k, c in v.counters().items()})
        return out

    def reset_counters(self) -> None:
        for v in self.variants:
            v.reset_counters()

    def plans(self) -> Any:
        """The first profile's tile plans (``variants[k].plans()`` for the others)."""
        return self.variants[0].plans()

    def report(self, with_counters: bool = False) -> dict[str, Any] | None:
        """Accelerator targets: one report section per profile."""
        if self.profile is None:
            return None
        return {"profiles": [{"shapes": profile_text(p), **(v.report(with_counters) or {})}
                             for p, v in zip(self.profiles, self.variants)]}

    def save(self, output_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
        build = self.build
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "qnnc_version": qnnc_version(),
            "source_model": self.source,
            "pipeline": self.pipeline,
            **quantisation_manifest(self.graph, self.calibration),
            "pad_to_profile": self.pad_to_profile,
            "signature": [{"name": s.name, "dtype": s.dtype, "dims": list(s.dims)
                           if s.dims is not None else None} for s in self.signature],
        }
        if build is not None:
            manifest.update({"target": self.target, "module": build.module_path.name,
                             "module_name": build.module_name,
                             "arena_bytes": build.arena_bytes,
                             "weight_bytes": build.weight_bytes})
        manifest["profiles"] = [{
            "shapes": {n: list(s) for n, s in prof.items()},
            "ir": profile_ir_file(k),
            "inputs": [_io_entry(v.name, v.type) for v in var.graph.inputs],
            "outputs": [_io_entry(v.name, v.type) for v in var.graph.outputs],
        } for k, (prof, var) in enumerate(zip(self.profiles, self.variants))]

        def fill(folder: Path) -> None:
            blobs: dict[str, np.ndarray] = {}
            for k, var in enumerate(self.variants):
                text = print_graph(var.graph, blobs=blobs, shared=True)
                (folder / profile_ir_file(k)).write_text(text, encoding="utf-8")
            if blobs:
                save_blobs(blobs, folder / BLOBS_FILE)
            if build is not None:
                for f in sorted(build.folder.iterdir()):
                    if f.is_file():
                        shutil.copy2(f, folder / f.name)
            (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
            if self.profile is not None:
                from targets.report import write_profile_reports

                write_profile_reports(folder, [
                    (profile_text(p), v.graph, v.plans()) for p, v in
                    zip(self.profiles, self.variants)], self.profile)

        return write_folder_atomically(Path(output_dir), fill, force=force)


def _pad_to(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    if tuple(a.shape) == tuple(shape):
        return a
    return np.pad(a, [(0, int(t) - int(s)) for s, t in zip(a.shape, shape)])


def compile_profiles(proto: ModelProto, source: str, profiles: list[Shapes],
                     signature: Sequence[InputSig], passes: list[Pass], opts: CompileOptions,
                     chip: Any, outcome: QuantizeOutcome) -> CompiledModel:
    """Compile ``proto`` for every shape in ``profiles`` with the bound ``passes`` (one
    profile: a plain CompiledModel, calibrated on samples of whatever shapes they have)."""
    from compiler.builds import build, build_profiles

    multi = len(profiles) > 1
    if multi and (opts.eval_data is not None or opts.min_sqnr_db is not None
                  or opts.max_drop is not None):
        raise QnncError("the accuracy report and budget (--eval, --min-sqnr, --max-drop) "
                        "compare one shape; compile one shape profile for them")
    ran = [p for p in passes if p.name not in opts.disabled_passes]
    after = [p.name for p in ran] if "all" in opts.print_after else list(opts.print_after)
    at = next((i for i, p in enumerate(passes) if isinstance(p, Quantize)), len(passes))
    before, rest = passes[:at], passes[at:]

    def prepare(shapes: Shapes) -> Graph:
        graph = import_model(proto, shapes, max_tensor_bytes=opts.max_tensor_bytes)
        check_domain(graph)
        return run_pipeline(graph, before, print_after=[a for a in after if a in
                                                         {p.name for p in before}],
                            disabled=opts.disabled_passes, on_print=opts.on_print)

    floats = [prepare(p) for p in profiles]
    if rest and isinstance(rest[0], Quantize) and "quantize" not in opts.disabled_passes \
            and not prequantised(floats[0]):
        q = rest[0]
        cal = _calibrate(proto, profiles, floats, signature, q, prepare)
        rest = [dataclasses.replace(q, calibrated=cal), *rest[1:]]
    later = {p.name for p in rest}
    graphs = []
    for g in floats:
        g = run_pipeline(g, rest, print_after=[a for a in after if a in later],
                         disabled=opts.disabled_passes, on_print=opts.on_print)
        verify(g)
        graphs.append(g)
    target = chip.name if chip is not None else opts.target
    if not multi:  # one shape, calibrated on samples of any shape: a plain compiled model
        single = CompiledModel(graphs[0], source=source, pipeline=[str(p) for p in ran],
                               target=target, build=build(graphs[0], opts, chip))
        single.profile = chip
        single.accuracy, single.auto_precision = outcome.accuracy, outcome.auto_precision
        single.calibration = outcome.calibration
        if opts.output_dir is not None:
            single.save(opts.output_dir, force=opts.force)
        return single
    titles = [profile_text(p) for p in profiles]
    built = build_profiles(graphs, titles, opts, chip)
    variants = []
    for k, g in enumerate(graphs):
        v = CompiledModel(g, source=source, pipeline=[str(p) for p in ran], target=target,
                          build=built, profile_index=k)
        v.profile = chip
        variants.append(v)
    model = ProfiledModel(variants, profiles, pad_to_profile=opts.pad_to_profile,
                          signature=signature)
    model.calibration = outcome.calibration
    if opts.output_dir is not None:
        model.save(opts.output_dir, force=opts.force)
    return model


def _calibrate(proto: ModelProto, profiles: list[Shapes], floats: list[Graph],
               signature: Sequence[InputSig], q: Quantize, prepare: Any) -> Any:
    """One calibration over samples of any allowed shape (see calibrate_shapes)."""
    from compiler.quant.blas_threads import limited_blas
    from compiler.quant.calibrate import calibrate_shapes
    from compiler.quant.method_choice import resolve

    known = {_key(p): g for p, g in zip(profiles, floats)}
    extra: OrderedDict[tuple[Any, ...], Graph] = OrderedDict()

    def graph_at(shapes: dict[str, tuple[int, ...]]) -> Graph:
        key = _key(shapes)
        if key in known:
            return known[key]
        if key not in extra:
            extra[key] = prepare(dict(shapes))
            while len(extra) > _SHAPE_CACHE:
                extra.popitem(last=False)
        extra.move_to_end(key)
        return extra[key]

    types = {v.name: v.type for v in floats[0].inputs}
    patterns = {s.name: InputPattern(types[s.name].dtype if s.name in types else
                                     DType(s.dtype), s.dims if s.dims is not None
                                     else (None,) * types[s.name].rank)
                for s in signature if s.name in types}
    with limited_blas():
        cal = calibrate_shapes(graph_at, patterns, q.calibration,
                               q.method,  # type: ignore[arg-type]
                               percentile=q.percentile, progress=q.progress)
        return resolve(cal, q.config())  # auto's choice, once for every profile


def _key(shapes: Mapping[str, Sequence[int]]) -> tuple[Any, ...]:
    return tuple(sorted((n, tuple(int(d) for d in s)) for n, s in shapes.items()))


def load_profiled(folder: Path, manifest: dict[str, Any], build: Any, chip: Any
                  ) -> ProfiledModel:
    """Reload a folder written by :meth:`ProfiledModel.save`."""
    entries = manifest.get("profiles")
    if not isinstance(entries, list) or not entries:
        raise ModelLoadError(f"{str(folder)!r}: manifest.json lists no shape profiles; "
                             "recompile")
    blob_path = folder / BLOBS_FILE
    blobs = load_blobs(blob_path) if blob_path.is_file() else None
    variants, profiles = [], []
    for k, e in enumerate(entries):
        path = folder / profile_ir_file(k)
        try:
            graph = parse_graph(path.read_text(encoding="utf-8"), blobs)
            shapes = {str(n): tuple(int(d) for d in s) for n, s in e["shapes"].items()}
        except QnncError:
            raise
        except Exception as exc:  # noqa: BLE001 - a file-format boundary
            raise ModelLoadError(f"cannot read shape profile {k} of {str(folder)!r}: "
                                 f"{type(exc).__name__}: {exc}. Recompile the model.") from None
        v = CompiledModel(graph, source=str(manifest.get("source_model", "")),
                          pipeline=list(manifest.get("pipeline", [])),
                          target=manifest.get("target"), build=build, profile_index=k)
        v.profile = chip
        variants.append(v)
        profiles.append(shapes)
    sig = [InputSig(str(s["name"]), str(s["dtype"]),
                    tuple(s["dims"]) if s.get("dims") is not None else None)
           for s in manifest.get("signature", [])]
    model = ProfiledModel(variants, profiles, pad_to_profile=bool(manifest.get(
        "pad_to_profile", False)), signature=sig)
    model.calibration = manifest.get("calibration")
    return model


__all__ = ["ProfiledModel", "compile_profiles", "load_profiled"]
