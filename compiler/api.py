"""The public Python API: load an ONNX model, compile it, save and reload the result, run it.

Typical use::

    import numpy as np
    from compiler.api import compile_model, load_compiled

    cm = compile_model("model.onnx", input_shapes={"input": (1, 3, 224, 224)},
                       output_dir="build/model")
    (logits,) = cm.run(None, {"input": np.zeros((1, 3, 224, 224), np.float32)})

    again = load_compiled("build/model")       # the saved folder runs the same way
    (logits2,) = again.run(["logits"], {"input": np.zeros((1, 3, 224, 224), np.float32)})

``run`` has the shape of onnxruntime's ``InferenceSession.run`` so that swapping one for the
other in a test is a one-line change. Without a target, compiled models run on the reference
interpreter; ``target="host"`` generates C, builds it into an extension module (cached by
content hash) and runs that natively, behind the same interface::

    cm = compile_model("model.onnx", target="host", threads=2, output_dir="build/model")

Every mistake a user can make (a bad file, an unsupported op, feeds of the wrong shape)
raises a :class:`compiler.errors.QnncError` subclass with a message meant to be read.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from onnx import ModelProto

from compiler.errors import InputError, ModelLoadError, QnncError
from compiler.frontend.importer import import_model
from compiler.frontend.loader import check_model, load_onnx
from ir.graph import Graph
from ir.interpreter import InterpreterError, check_feeds
from ir.interpreter import run as interpret
from ir.types import TensorType
from ir.verifier import verify
from targets.registry import target_names

ModelLike = str | os.PathLike[str] | ModelProto
InputShapes = Mapping[str, Sequence[int]]
PrintHook = Callable[[str, str], None]

IR_FILE = "model.ir"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1


def qnnc_version() -> str:
    """The installed qnnc version (``0+unknown`` when running from an uninstalled tree)."""
    try:
        return importlib.metadata.version("qnnc")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def load_model(model: ModelLike, input_shapes: InputShapes | None = None) -> Graph:
    """Import an ONNX model (a file path or a ``ModelProto``) into an IR graph.

    ``input_shapes`` fixes inputs with symbolic dimensions, e.g. ``{"input": (1, 3, 224,
    224)}``. Raises :class:`ModelLoadError` for unreadable/invalid models and
    :class:`UnsupportedModelError` (listing every unsupported op) or :class:`ConversionError`
    for models qnnc cannot import::

        >>> from onnx import TensorProto, helper
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
        >>> m = helper.make_model(helper.make_graph(
        ...     [helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
        >>> [n.op for n in load_model(m).nodes]
        ['Relu']
    """
    if isinstance(model, ModelProto):
        check_model(model, "the model")
        proto = model
    elif isinstance(model, (str, os.PathLike)):
        proto = load_onnx(model)
    else:
        raise QnncError(
            f"load_model expects a path to an .onnx file or an onnx.ModelProto, got "
            f"{type(model).__name__}"
        )
    return import_model(proto, input_shapes)


def _source_name(model: ModelLike | Graph) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, ModelProto):
        return f"<ModelProto {model.graph.name!r}>"
    return f"<Graph {model.name!r}>"


class CompiledModel:
    """A compiled model: its final IR graph, runnable with :meth:`run`."""

    def __init__(
        self, graph: Graph, *, source: str = "", pipeline: Sequence[str] = (),
        target: str | None = None, build: Any = None,
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
        #: the accelerator profile (targets.profiles.schema.Profile) the model was tiled for
        self.profile: Any = None
        self._session: Any = build.load().Session() if build is not None else None

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
        wanted = self.output_names if output_names is None else list(output_names)
        unknown_out = [n for n in wanted if n not in self.output_names]
        if unknown_out:
            raise InputError(
                f"unknown output name(s) {unknown_out}; the model's outputs are "
                f"{self.output_names}"
            )
        fed = self._check_feeds(feeds)
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

    def save(self, output_dir: str | os.PathLike[str]) -> Path:
        """Write the model to ``output_dir`` (model.ir, model.ir.npz, manifest.json) atomically."""
        save_ir = _ir_text().save_ir
        manifest = {
            "format": MANIFEST_FORMAT,
            "qnnc_version": qnnc_version(),
            "source_model": self.source,
            "pipeline": self.pipeline,
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

        return write_folder_atomically(Path(output_dir), fill)


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


# -- compiling ----------------------------------------------------------------------------
def _passes() -> ModuleType | None:
    """compiler.passes if it is present (a package with run_pipeline), else None."""
    spec = importlib.util.find_spec("compiler.passes")
    if spec is None or spec.origin is None:  # absent, or a bare folder without __init__.py
        return None
    mod = importlib.import_module("compiler.passes")
    return mod if hasattr(mod, "run_pipeline") else None


def _ir_text() -> ModuleType:
    try:
        return importlib.import_module("ir.text")
    except ModuleNotFoundError as e:
        if e.name != "ir.text":
            raise
        raise QnncError("this qnnc build has no IR text format (ir.text); cannot save") from None


def pass_names() -> list[str]:
    """Every registered pass name (empty when the passes package is absent)."""
    mod = _passes()
    return sorted(mod.PASSES) if mod is not None else []


def default_pipeline() -> list[str]:
    mod = _passes()
    return list(mod.DEFAULT_PIPELINE) if mod is not None else []


def _check_pass_names(names: Sequence[str], what: str, known: Sequence[str]) -> None:
    bad = [n for n in names if n not in known]
    if bad:
        listing = ", ".join(sorted(known)) or "none"
        raise QnncError(f"{what} names unknown pass(es) {bad}; the passes are: {listing}")


DEFAULT_CALIB_METHOD = "percentile"  # the most accurate across the benchmark models


def compile_model(
    model: ModelLike | Graph,
    *,
    input_shapes: InputShapes | None = None,
    pipeline: Sequence[str] | None = None,
    disabled_passes: Sequence[str] = (),
    print_after: Sequence[str] = (),
    output_dir: str | os.PathLike[str] | None = None,
    on_print: PrintHook | None = None,
    target: str | None = None,
    target_file: str | os.PathLike[str] | None = None,
    threads: int = 1,
    cpu: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    werror: bool = False,
    extra_cflags: Sequence[str] = (),
    precision: str = "f32",
    calibration: Any = None,
    calib_method: str = DEFAULT_CALIB_METHOD,
    skip_layers: Sequence[str] = (),
    skip_op_types: Sequence[str] = (),
    progress: Callable[[int, int | None], None] | None = None,
    build_progress: Callable[[int, int | None], None] | None = None,
    eval_data: Any = None,
    min_sqnr_db: float | None = None,
    max_drop: float | None = None,
    per_channel: bool = True,
    equalize: bool = False,
) -> CompiledModel:
    """Import ``model``, run the pass pipeline, quantise it if asked, and (with
    ``output_dir``) save the result.

    - ``pipeline``: pass names in order; None means the default pipeline.
    - ``disabled_passes``: names to skip (the rest of the pipeline still runs).
    - ``print_after``: pass names (or ``"all"``) after which ``on_print(pass, ir_text)``
      is called, to watch what each pass does.
    - ``output_dir``: a folder to write model.ir, model.ir.npz and manifest.json into;
      written atomically, so a failure leaves no half-written folder behind.
    - ``target``: None runs on the reference interpreter; ``"host"`` generates C for this
      CPU (``cpu``: auto, generic, avx2, avx512vnni or native; ``threads`` > 1 uses
      OpenMP), builds it with cython + cc (cached under ``cache_dir``, by default
      ~/.cache/qnnc) and runs it natively; the output folder then also holds model.c,
      model.h, weights.c, the .pyx wrapper, the built module, a Makefile and main.c.
    - ``target`` may also name an accelerator profile (``qnnc targets``: ascend910b,
      ascend310p, mlu370x8, thinker2), or ``target_file`` a TOML/JSON profile of your own
      chip: the INT8 graph then gets the chip's layouts and tiles (passes layout,
      fold-layout, tile; ``print_after`` may name them) and C that stages every tile through
      static arrays of the chip's buffer sizes and counts bytes and MACs
      (``CompiledModel.counters()``), built and run on this host; the output folder also
      gets report.txt, report.json and roofline.html.
    - ``precision``: ``"f32"`` (default) or ``"int8"``. INT8 needs ``calibration`` data (an
      .npz/.npy path, a folder of .npy files, a dict of stacked arrays or an iterable of
      {input: array} samples); ``calib_method`` is minmax, percentile, entropy or mse;
      ``skip_layers`` (node names) and ``skip_op_types`` stay f32; ``progress(done, total)``
      is called per calibration sample. ``print_after`` may name ``"quantize"``.
    - ``build_progress(done, total)`` is called as the C build's steps finish.
    - ``eval_data``: held-out samples (same forms as ``calibration``); with INT8 every layer
      is compared with f32 on them (``CompiledModel.accuracy``: SQNR, cosine, max error).
      ``min_sqnr_db`` (output SQNR vs f32) and/or ``max_drop`` (the largest allowed fall in
      top-1 agreement with the f32 model, e.g. 0.01) turn on automatic mixed precision: the
      most sensitive layers stay f32 until the budget holds (``CompiledModel.auto_precision``).
    - ``per_channel=False`` quantises weights per tensor (for targets without per-channel
      requantisation); ``equalize=True`` adds cross-layer equalisation after BatchNorm
      folding, which evens out per-channel weight ranges before per-tensor quantisation.

    ::

        cm = compile_model("net.onnx", print_after=["all"],
                           on_print=lambda p, text: print(f"after {p}:\\n{text}"))
    """
    graph = model if isinstance(model, Graph) else load_model(model, input_shapes)
    mod = _passes()
    known = sorted(mod.PASSES) if mod is not None else []
    steps = list(mod.DEFAULT_PIPELINE if mod is not None else []) if pipeline is None else list(
        pipeline
    )
    if steps and mod is None:
        raise QnncError(f"pipeline {steps} asked for, but this qnnc build has no passes")
    if equalize and "equalize" not in steps:
        # after the folds, so that equalisation sees the layers' final weights
        folds = [i for i, p in enumerate(steps) if p in ("fold-batchnorm", "fold-affine")]
        at = folds[-1] + 1 if folds else len(steps)
        steps[at:at] = ["equalize"]
    profile = _accelerator(target, target_file)
    if profile is not None:
        target = profile.name
    target_passes = list(getattr(mod, "TARGET_PIPELINE", []))
    tsteps = target_passes if profile is not None else []
    after = (
        [p for p in steps + tsteps if p not in disabled_passes] if "all" in print_after
        else list(print_after)
    )
    _check_pass_names(steps, "the pipeline", known)
    _check_pass_names(list(disabled_passes), "--disable-pass", known)
    _check_pass_names([p for p in after if p != "quantize"], "--print-after", known + ["quantize"])
    target_after = [p for p in after if p in tsteps]
    idle = [p for p in after if p in target_passes and p not in tsteps]
    if idle:
        raise QnncError(f"--print-after {idle[0]}: that pass runs only for an accelerator "
                        "target (--target ascend910b, ..., or --target-file)")
    if precision not in PRECISIONS:
        raise QnncError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if profile is not None and precision != "int8" and not _prequantised(graph):
        raise QnncError(f"target {target!r} runs INT8 kernels: compile with --precision int8 "
                        "and calibration data (--calib), or give a pre-quantised model")
    if mod is not None and steps:
        graph = mod.run_pipeline(
            graph, steps, print_after=[p for p in after if p != "quantize" and p not in tsteps],
            disabled=tuple(disabled_passes), on_print=on_print,
        )
    verify(graph)
    ran = [p for p in steps if p not in disabled_passes]
    accuracy = auto = None
    if (min_sqnr_db is not None or max_drop is not None) and eval_data is None:
        raise QnncError("an accuracy budget (--min-sqnr / --max-drop) needs held-out "
                        "evaluation samples (--eval data.npz, or eval_data= in the API)")
    if precision == "int8" and not _prequantised(graph):
        float_graph = graph
        graph, auto = _quantize(graph, calibration, calib_method, skip_layers, skip_op_types,
                                progress, eval_data, min_sqnr_db, max_drop, per_channel)
        ran.append("quantize")
        if eval_data is not None:
            from compiler.quant.accuracy import compare

            accuracy = compare(float_graph, graph, eval_data)
        if on_print is not None and ("quantize" in after or "all" in print_after):
            on_print("quantize", _ir_text().print_graph(graph))
    build = None
    if profile is not None:
        from compiler.passes.target_context import for_target

        with for_target(profile):
            graph = mod.run_pipeline(graph, tsteps, print_after=target_after,
                                     disabled=tuple(disabled_passes), on_print=on_print)
        verify(graph)
        ran += [p for p in tsteps if p not in disabled_passes]
        build = _build_staged(graph, profile, cpu, cache_dir, werror, extra_cflags,
                              build_progress)
    elif target is not None:
        build = _build_target(graph, target, threads, cpu, cache_dir, werror, extra_cflags,
                              build_progress)
    compiled = CompiledModel(graph, source=_source_name(model), pipeline=ran, target=target,
                             build=build)
    compiled.profile = profile
    compiled.accuracy, compiled.auto_precision = accuracy, auto
    if output_dir is not None:
        compiled.save(output_dir)
    return compiled


PRECISIONS = ("f32", "int8")


def _accelerator(target: str | None, target_file: Any) -> Any:
    """The accelerator profile asked for (None: the interpreter or host C)."""
    from targets.profiles import load_target

    if target_file is not None:
        if target is not None:
            raise QnncError("give either a target name or a target file, not both")
        return load_target(Path(target_file))
    if target is None or target == "host":
        return None
    if target not in target_names():
        raise QnncError(f"unknown target {target!r}; the targets are: "
                        f"{', '.join(target_names())} "
                        "(or a profile file with --target-file)")
    return load_target(target)


def _build_staged(graph: Graph, profile: Any, cpu: str,
                  cache_dir: str | os.PathLike[str] | None, werror: bool,
                  extra_cflags: Sequence[str], progress: Any = None) -> Any:
    from targets.host.build import BuildOptions, build_host
    from targets.staged.renderer import StagedRenderer

    opts = BuildOptions(cpu=cpu, threads=1, werror=werror, extra_cflags=tuple(extra_cflags))
    return build_host(graph, opts, cache_dir=cache_dir, version=qnnc_version(),
                      renderer=StagedRenderer(profile), progress=progress)


def _prequantised(graph: Graph) -> bool:
    """The model came quantised (QDQ or QOperator): its own scales are kept, and there is
    nothing to calibrate."""
    return any(v.type.quant is not None for n in graph.nodes for v in n.outputs)


def _quantize(
    graph: Graph,
    calibration: Any,
    method: str,
    skip_layers: Sequence[str],
    skip_op_types: Sequence[str],
    progress: Callable[[int, int | None], None] | None,
    eval_data: Any = None,
    min_sqnr_db: float | None = None,
    max_drop: float | None = None,
    per_channel: bool = True,
) -> tuple[Graph, Any]:
    """The quantised graph and, with an accuracy budget, the automatic-precision result."""
    from compiler.quant.auto import auto_mixed_precision, top1_agreement
    from compiler.quant.calibrate import METHODS, calibrate_model
    from compiler.quant.quantize import QuantConfig, quantize_graph

    if calibration is None:
        raise QnncError(
            "INT8 compilation needs calibration data: give a few hundred representative "
            "input samples (--calib data.npz, or calibration= in the API)"
        )
    if method not in METHODS:
        raise QnncError(f"calibration method must be one of {list(METHODS)}, got {method!r}")
    names = {n.name for n in graph.nodes}
    unknown = sorted(set(skip_layers) - names)
    if unknown:
        raise QnncError(
            f"--skip-layers names {unknown}, which are not layers of the model; "
            "`qnnc inspect` lists the layer names"
        )
    cal = calibrate_model(graph, calibration, method, progress=progress)  # type: ignore[arg-type]
    cfg = QuantConfig(skip_layers=frozenset(skip_layers), skip_op_types=frozenset(skip_op_types),
                      per_channel=per_channel)
    auto = None
    if min_sqnr_db is not None or max_drop is not None:
        metric = top1_agreement(graph, eval_data) if max_drop is not None else None
        auto = auto_mixed_precision(graph, cal.ranges, eval_data, min_sqnr_db=min_sqnr_db,
                                    max_drop=max_drop, metric=metric, config=cfg,
                                    channel_means=cal.channel_means)
        cfg = auto.config(cfg)
    qgraph = quantize_graph(graph, cal.ranges, cfg, cal.channel_means)
    verify(qgraph)
    return qgraph, auto


def _build_target(
    graph: Graph, target: str, threads: int, cpu: str,
    cache_dir: str | os.PathLike[str] | None, werror: bool, extra_cflags: Sequence[str],
    progress: Any = None,
) -> Any:
    if target not in target_names():
        raise QnncError(f"unknown target {target!r}; the targets are: "
                        f"{', '.join(target_names())}")
    if threads < 1:
        raise QnncError(f"threads must be >= 1, got {threads}")
    from targets.host.build import BuildOptions, build_host

    opts = BuildOptions(cpu=cpu, threads=threads, werror=werror,
                        extra_cflags=tuple(extra_cflags))
    return build_host(graph, opts, cache_dir=cache_dir, version=qnnc_version(),
                      progress=progress)


def load_compiled(path: str | os.PathLike[str]) -> CompiledModel:
    """Reload a folder written by :func:`compile_model` (or ``qnnc compile``)."""
    folder = Path(path)
    if not folder.exists():
        raise ModelLoadError(f"compiled model folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ModelLoadError(f"{str(folder)!r} is not a folder")
    ir_path = folder / IR_FILE
    if not ir_path.is_file():
        raise ModelLoadError(
            f"{str(folder)!r} is not a qnnc compiled folder (it has no {IR_FILE}); make one "
            "with `qnnc compile MODEL.onnx -o FOLDER`"
        )
    manifest: dict[str, Any] = {}
    mpath = folder / MANIFEST_FILE
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"{str(mpath)!r} is not valid JSON: {e}") from None
    load_ir = _ir_text().load_ir
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
    return cm


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
    from targets.host.build import BuildResult

    return BuildResult(folder, path, str(name), True, 0.0, int(manifest.get("arena_bytes", 0)),
                       int(manifest.get("weight_bytes", 0)))


# -- atomic folder writing ------------------------------------------------------------------
def _is_replaceable(target: Path) -> bool:
    """An existing folder we may overwrite: empty, or one qnnc wrote (it has a manifest)."""
    if not target.is_dir():
        return False
    if not any(target.iterdir()):
        return True
    try:
        data = json.loads((target / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "qnnc_version" in data


def write_folder_atomically(target: Path, fill: Callable[[Path], None]) -> Path:
    """Build the folder in a temporary sibling with ``fill``, then rename it into place.

    A failure while filling leaves nothing behind (not even parent folders this call
    created). An existing target is replaced only if it is empty or was written by qnnc.
    """
    if target.exists() and not _is_replaceable(target):
        kind = "a file" if not target.is_dir() else "a folder qnnc did not write"
        raise QnncError(
            f"output {str(target)!r} already exists and is {kind}; refusing to overwrite it. "
            "Choose another output folder."
        )
    abs_target = target.absolute()
    created: list[Path] = []
    parent = abs_target.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    try:
        for d in reversed(created):
            d.mkdir()
        tmp = Path(tempfile.mkdtemp(prefix=f".{abs_target.name}.", dir=abs_target.parent))
    except OSError as e:
        _remove_dirs(created)
        raise QnncError(f"cannot create output folder {str(target)!r}: {e.strerror}") from None
    try:
        fill(tmp)
        if abs_target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{abs_target.name}.old.", dir=abs_target.parent))
            old.rmdir()
            os.rename(abs_target, old)
            try:
                os.rename(tmp, abs_target)
            except BaseException:
                os.rename(old, abs_target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, abs_target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        raise
    return target


def _remove_dirs(created: list[Path]) -> None:
    for d in created:  # innermost first
        try:
            d.rmdir()
        except OSError:
            pass
