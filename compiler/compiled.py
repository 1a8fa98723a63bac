"""A compiled model: its final IR, the build of its generated code, how to run it, and its
folder on disk (model.ir, model.ir.npz, manifest.json, the generated C and built module).

``run`` has the shape of onnxruntime's ``InferenceSession.run``, so swapping one for the other
in a test is a one-line change; feeds are checked (names, shapes, dtypes) with errors that say
what was expected.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compiler.errors import InputError, ModelLoadError, QnncError
from compiler.folders import MANIFEST_FILE, write_folder_atomically
from ir.graph import Graph
from ir.interpreter import InterpreterError, check_feeds
from ir.interpreter import run as interpret
from ir.text import load_ir, save_ir
from ir.types import TensorType

IR_FILE = "model.ir"
MANIFEST_FORMAT = 1


def qnnc_version() -> str:
    """The installed qnnc version (``0+unknown`` when running from an uninstalled tree)."""
    try:
        return importlib.metadata.version("qnnc")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class CompiledModel:
    """A compiled model: its final IR graph, runnable with :meth:`run`."""

    def __init__(
        self, graph: Graph, *, source: str = "", pipeline: Sequence[str] = (),
        target: str | None = None, build: Any = None, profile_index: int = 0,
    ) -> None:
        self.graph = graph
        self.source = source
        self.pipeline = list(pipeline)
        self.target = target
        #: targets.host.build.BuildResult when compiled for the host (None: interpreter)
        self.build = build
        #: INT8 only: per-layer accuracy vs f32 (compiler.quant.accuracy.AccuracyReport) when
        #: evaluation data was given, and the automatic mixed-precision result if asked for
        self.accuracy: Any = None
        self.auto_precision: Any = None
        #: INT8 calibrated here: {"method", "percentile" (percentile and layerwise methods),
        #: "weight_range", "samples", "samples_sha256"}
        #: (in manifest.json)
        self.calibration: dict[str, Any] | None = None
        #: the accelerator profile (targets.profiles.schema.Profile) the model was tiled for
        self.profile: Any = None
        #: which shape profile of the build this is (0 for a model compiled for one shape)
        self.profile_index = profile_index
        #: INT8 models refuse NaN/Inf in float inputs (quantising maps them to ordinary
        #: codes, so the outputs would look valid); True lets them through
        self.allow_nonfinite = False
        self._quantised = model_precision(graph) == "int8"
        self._session: Any = (build.load().Session(profile_index) if build is not None
                              else None)

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.graph.inputs]

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.graph.outputs]

    @property
    def input_types(self) -> dict[str, TensorType]:
        return {v.name: v.type for v in self.graph.inputs}

    @property
    def output_types(self) -> dict[str, TensorType]:
        return {v.name: v.type for v in self.graph.outputs}

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}: {t}" for k, t in self.input_types.items())
        outs = ", ".join(f"{k}: {t}" for k, t in self.output_types.items())
        return f"<CompiledModel ({ins}) -> ({outs}), {len(self.graph.nodes)} nodes>"

    def run(
        self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]
    ) -> list[np.ndarray]:
        """Run the model: ``feeds`` maps input names to arrays; returns the outputs named in
        ``output_names`` (all of them, in model order, when None).

        Raises :class:`InputError` for an unknown or missing input, a wrong shape, or a dtype
        that cannot be converted without changing meaning (e.g. ints for a float input).
        """
        check_run_arguments(output_names, feeds)
        wanted = self.output_names if output_names is None else list(output_names)
        unknown_out = [n for n in wanted if n not in self.output_names]
        if unknown_out:
            raise InputError(
                f"unknown output name(s) {unknown_out}; the model's outputs are "
                f"{self.output_names}"
            )
        fed = self._check_feeds(feeds)
        if self._quantised and not self.allow_nonfinite:
            check_finite(fed)
        try:
            fed = check_feeds(self.graph, fed)
        except InterpreterError as e:
            raise InputError(str(e)) from None
        if self._session is not None:
            return list(self._session.run(wanted, fed))
        outs = interpret(self.graph, fed)
        return [outs[n] for n in wanted]

    def counters(self) -> dict[str, dict[str, int]]:
        """Accelerator targets: per staged layer, the bytes moved on each link (buffer name
        or "offchip") and the MACs counted by the generated code since the model was built
        or :meth:`reset_counters`; {} for other targets."""
        if self._session is None or not hasattr(self._session, "counters"):
            return {}
        return dict(self._session.counters())

    def reset_counters(self) -> None:
        if self._session is not None and hasattr(self._session, "reset_counters"):
            self._session.reset_counters()

    def team_runs(self) -> tuple[int, int] | None:
        """A multi-thread host build: (runs with its full thread team, runs with one thread)
        of this shape profile since the module was loaded, as its per-run choice made them
        (csrc/qnnc_runtime.h). None for a one-thread build or the interpreter."""
        if self.build is None:
            return None
        # the module the session runs (one of that name loaded before is the one in use)
        lib = ctypes.CDLL(str(self.build.load().__file__))
        for name in (f"qnnc_team_runs_p{self.profile_index}", "qnnc_team_runs"):
            try:
                runs = (ctypes.c_int64 * 2).in_dll(lib, name)
            except ValueError:
                continue
            return int(runs[0]), int(runs[1])
        return None

    def plans(self) -> Any:
        """Accelerator targets: the tile plans (targets.tiling.TilePlans) recorded on the
        graph by the tile pass, with their modelled costs; None for other targets."""
        if self.profile is None:
            return None
        from targets.staged.plans import plans_of

        return plans_of(self.graph, self.profile)

    def report(self, with_counters: bool = False) -> dict[str, Any] | None:
        """Accelerator targets: the data of report.json (per layer: shapes, layout, tiles,
        buffer occupancy, bytes per level vs the compulsory minimum, modelled cycles,
        bound; model totals and the roofline). ``with_counters`` adds the counters of the
        runs so far, measured vs modelled. None for other targets."""
        if self.profile is None:
            return None
        from targets.report import report_data

        return report_data(self.graph, self.plans(), self.profile,
                           self.counters() if with_counters else None)

    def _describe_inputs(self) -> str:
        return ", ".join(f"{k} ({t})" for k, t in self.input_types.items()) or "none"

    def _check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if not isinstance(feeds, Mapping):
            raise InputError(
                f"feeds must be a dict of input name -> array, got {type(feeds).__name__}"
            )
        types = self.input_types
        unknown = sorted(set(feeds) - set(types))
        if unknown:
            raise InputError(
                f"unknown input name(s) {unknown}; the model's inputs are: "
                f"{self._describe_inputs()}"
            )
        missing = [n for n in types if n not in feeds]
        if missing:
            raise InputError(
                f"missing input(s) {missing}; the model's inputs are: {self._describe_inputs()}"
            )
        return {name: _conform(name, feeds[name], t) for name, t in types.items()}

    def save(self, output_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the model to ``output_dir`` (model.ir, model.ir.npz, manifest.json) atomically;
        an existing folder is replaced only if it is empty or a previous qnnc output, unless
        ``force`` (compiler/folders.py)."""
        manifest = {
            "format": MANIFEST_FORMAT,
            "qnnc_version": qnnc_version(),
            "source_model": self.source,
            "pipeline": self.pipeline,
            **quantisation_manifest(self.graph, self.calibration),
            **_build_manifest(self.target, self.build),
            "inputs": [_io_entry(v.name, v.type) for v in self.graph.inputs],
            "outputs": [_io_entry(v.name, v.type) for v in self.graph.outputs],
        }

        def fill(folder: Path) -> None:
            save_ir(self.graph, str(folder / IR_FILE))
            if self.build is not None:
                for f in sorted(self.build.folder.iterdir()):
                    if f.is_file():
                        shutil.copy2(f, folder / f.name)
            (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
            if self.profile is not None:
                from targets.report import write_reports

                write_reports(folder, self.graph, self.plans(), self.profile)

        return write_folder_atomically(Path(output_dir), fill, force=force)


def model_precision(graph: Graph) -> str:
    """"int8" when any value of the graph carries quantisation parameters, else "f32"."""
    return "int8" if any(v.type.quant is not None for v in graph.values()) else "f32"


def quantisation_manifest(graph: Graph, calibration: dict[str, Any] | None
                          ) -> dict[str, Any]:
    """The manifest's record of how the model was quantised: its precision and, when qnnc
    calibrated it, the method and the samples' count and sha256."""
    return {"precision": model_precision(graph),
            **({"calibration": calibration} if calibration else {})}
def check_finite(feeds: Mapping[str, np.ndarray]) -> None:
    """Refuse NaN or Inf in the float feeds of an INT8 model: quantising maps them to ordinary
    codes (NaN to the zero point, Inf to the end of the range), so the outputs would look
    valid while meaning nothing."""
    for name, a in feeds.items():
        if a.dtype.kind != "f":
            continue
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise InputError(
                f"input {name!r} holds {bad} NaN or infinite value(s) of {a.size}; an INT8 "
                "model quantises them to ordinary codes, so its outputs would look valid. "
                "Clean the data, or run anyway with --allow-nonfinite (qnnc run) or "
                "model.allow_nonfinite = True (Python)"
            )


def check_run_arguments(output_names: Any, feeds: Any) -> None:
    """run()'s arguments have the types onnxruntime's take: None or a list of output names,
    and a dict keyed by input names (str). Anything else is an InputError saying so."""
    if output_names is not None and (isinstance(output_names, (str, bytes)) or not isinstance(
            output_names, (list, tuple)) or not all(isinstance(n, str) for n in output_names)):
        raise InputError(
            f"output_names must be None (every output) or a list of output names (str), got "
            f"{output_names!r}"
        )
    if not isinstance(feeds, Mapping):
        raise InputError(
            f"feeds must be a dict of input name -> array, got {type(feeds).__name__}"
        )
    bad = [k for k in feeds if not isinstance(k, str)]
    if bad:
        raise InputError(
            f"feeds must be keyed by input names (str); got the key(s) {bad!r} of type "
            f"{type(bad[0]).__name__}"
        )


def _build_manifest(target: str | None, build: Any) -> dict[str, Any]:
    if build is None:
        return {}
    return {"target": target, "module": build.module_path.name,
            "module_name": build.module_name, "arena_bytes": build.arena_bytes,
            "weight_bytes": build.weight_bytes}


def _io_entry(name: str, t: TensorType) -> dict[str, Any]:
    return {"name": name, "type": str(t), "shape": list(t.shape), "dtype": t.dtype.np.name}


def _conform(name: str, value: Any, t: TensorType) -> np.ndarray:
    """``value`` as an array of ``t``'s dtype, refusing conversions that change meaning."""
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"input {name!r} is not an array: {e}") from None
    want = t.dtype.np
    if tuple(a.shape) != t.shape:
        raise InputError(
            f"input {name!r} has shape {list(a.shape)}, but the model expects "
            f"{list(t.shape)} ({t}). Reshape the data, or compile the model for that shape "
            "with --input-shape / input_shapes="
        )
    if a.dtype == want:
        return a
    ok = (a.dtype.kind == "f" and want.kind == "f") or (
        a.dtype.kind in "iu" and want.kind in "iu" and _ints_fit(a, want)
    )
    if not ok:
        raise InputError(
            f"input {name!r} has dtype {a.dtype}, but the model expects {want} ({t}); "
            f"convert it first, e.g. array.astype(numpy.{want.name})"
        )
    return a.astype(want)


def _ints_fit(a: np.ndarray, want: np.dtype) -> bool:
    if np.can_cast(a.dtype, want, casting="safe") or a.size == 0:
        return True
    info = np.iinfo(want)
    return bool(info.min <= a.min() and a.max() <= info.max)


def load_compiled(path: str | os.PathLike[str]) -> CompiledModel:
    """Reload a folder written by :func:`compile_model` (or ``qnnc compile``)."""
    folder = Path(path)
    if not folder.exists():
        raise ModelLoadError(f"compiled model folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ModelLoadError(f"{str(folder)!r} is not a folder")
    ir_path = folder / IR_FILE
    manifest = _read_manifest(folder)
    if "profiles" in manifest:
        from compiler.profiled import load_profiled

        return load_profiled(folder, manifest, _saved_build(folder, manifest),
                             _saved_profile(manifest.get("target")))
    if not ir_path.is_file():
        raise ModelLoadError(
            f"{str(folder)!r} is not a qnnc compiled folder (it has no {IR_FILE}); make one "
            "with `qnnc compile MODEL.onnx -o FOLDER`"
        )
    try:
        graph = load_ir(str(ir_path))
    except QnncError:
        raise
    except Exception as e:  # noqa: BLE001 - a file-format boundary: any failure means bad file
        raise ModelLoadError(
            f"cannot read {str(ir_path)!r}: {type(e).__name__}: {e}. Recompile the model."
        ) from None
    cm = CompiledModel(
        graph,
        source=str(manifest.get("source_model", "")),
        pipeline=list(manifest.get("pipeline", [])),
        target=manifest.get("target"),
        build=_saved_build(folder, manifest),
    )
    cm.profile = _saved_profile(cm.target)
    cm.calibration = manifest.get("calibration")
    return cm


def _read_manifest(folder: Path) -> dict[str, Any]:
    mpath = folder / MANIFEST_FILE
    if not mpath.is_file():
        return {}
    try:
        data = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{str(mpath)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{str(mpath)!r} does not hold a JSON object; recompile")
    return data


def _saved_profile(target: Any) -> Any:
    """The built-in profile a folder was compiled for (None: host, the interpreter, or a
    user's own profile file, which is not kept with the folder)."""
    from targets.profiles import BUILTIN_TARGETS, load_target

    if target in BUILTIN_TARGETS and target != "host":
        return load_target(target)
    return None


def _saved_build(folder: Path, manifest: dict[str, Any]) -> Any:
    """The built module saved in ``folder`` (None for interpreter-only folders)."""
    module, name = manifest.get("module"), manifest.get("module_name")
    if not module or not name:
        return None
    path = folder / str(module)
    if not path.is_file():
        raise ModelLoadError(f"{str(folder)!r} lacks its compiled module {module!r}; recompile")
    target = manifest.get("target")
    if target == "tvm":
        from targets.tvm.build import saved_build

        return saved_build(folder)
    if isinstance(target, str) and target.startswith("tvm:"):
        from targets.tvm.export import exported_build
        from targets.tvm.targets import parse

        return exported_build(folder, parse(target), cache_hit=True)
    from targets.host.build import BuildResult

    return BuildResult(folder, path, str(name), True, 0.0, int(manifest.get("arena_bytes", 0)),
                       int(manifest.get("weight_bytes", 0)))
