"""Calibration data: where the samples come from, and checking each against the model.

A *sample* is one complete feed of the model: for every graph input, an array of exactly that
input's shape — including the model's own batch dimension, if it has one. A model compiled for
input ``f32[1,3,224,224]`` takes samples of shape ``(1, 3, 224, 224)``; one compiled for
``f32[8,3,224,224]`` takes samples of 8 images each. Nothing is ever split or stacked along the
model's batch axis: where samples are stacked in one array, it is along a NEW leading axis.

Sources (see :func:`calibration_data`):

- an ``.npz`` file (or a dict of arrays): keys are input names. Either every array has a
  leading sample axis — shape ``(S, *input_shape)``, S samples, the same S for every input —
  or every array is exactly the input shape and the file holds one sample.
- an ``.npy`` file, for single-input models: the same two conventions as one .npz key.
- a folder of ``.npy`` files, one sample per file, each exactly the input shape. A
  single-input model reads every ``*.npy`` directly in the folder, in file-name order (plain
  string order: zero-pad numbers, ``img_007.npy``). A multi-input model reads one subfolder
  per input, named exactly like the input; the k-th file (in name order) of every subfolder
  forms sample k, so all subfolders must hold the same number of files. Other files are
  ignored. Files are loaded one sample at a time.
- any Python iterable of dicts ``{input name: array}``, one sample per dict.

A model compiled for several shape profiles (compiler/shape_profiles.py) takes samples of
any shape its declared dimensions allow, mixed freely (a folder of text lines of different
widths): the fixed sizes must match, and a dimension name shared by several inputs must take
one size within a sample.

Every sample is checked before it reaches the interpreter — input names, shapes, dtypes (only
conversions that keep every value: a wider type, float to float, integers that fit) and
NaN/inf — and each problem is an :class:`InputError` naming the sample, the input and what
was expected. An empty data set is an error too: a range from no data would be a guess.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compiler.errors import InputError
from ir.graph import Graph
from ir.types import DType, TensorType

Sample = Mapping[str, Any]


class InputPattern:
    """An input whose symbolic dimensions may take any size (``None``, or a name that takes
    one size per sample across every input using it)."""

    def __init__(self, dtype: DType, dims: tuple[int | str | None, ...]) -> None:
        self.dtype, self.dims = dtype, dims
        self.shape = dims  # what messages show

    @property
    def rank(self) -> int:
        return len(self.dims)

    def fits(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.dims) and all(
            not isinstance(d, int) or d == s for d, s in zip(self.dims, shape))

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.dims)
        return f"{self.dtype.value}[{dims}]"


Inputs = Graph | Mapping[str, "TensorType | InputPattern"]


def _inputs_of(model: Inputs) -> dict[str, TensorType | InputPattern]:
    if isinstance(model, Graph):
        return {v.name: v.type for v in model.inputs}
    return dict(model)


def _fits(t: TensorType | InputPattern, shape: tuple[int, ...]) -> bool:
    return t.fits(shape) if isinstance(t, InputPattern) else shape == t.shape


class CalibrationData:
    """Validated samples of a graph's inputs. Iterating yields ``{input name: array}`` dicts
    in the graph's input dtypes; ``count`` is the number of samples when known up front."""

    def __init__(
        self,
        graph: Inputs,
        samples: Callable[[], Iterator[tuple[str, Sample]]],
        count: int | None,
        source: str,
    ) -> None:
        self.inputs = _inputs_of(graph)
        self.count = count
        self.source = source
        self._samples = samples
        if count == 0:
            raise _empty(source)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        n = 0
        for where, sample in self._samples():
            yield check_sample(self.inputs, sample, where)
            n += 1
        if n == 0:
            raise _empty(self.source)

    def __repr__(self) -> str:
        n = "unknown number of" if self.count is None else str(self.count)
        return f"<CalibrationData: {n} samples from {self.source}>"


def calibration_data(source: Any, graph: Inputs) -> CalibrationData:
    """Calibration samples for ``graph`` from a path (.npz, .npy or folder), a dict of
    stacked arrays, an iterable of sample dicts, or an existing :class:`CalibrationData`.
    ``graph`` is the model (its inputs' types), or input name -> type or InputPattern."""
    if isinstance(source, CalibrationData):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return from_folder(path, graph)
        if not path.exists():
            raise InputError(
                f"calibration data {str(path)!r} does not exist; give an .npz file, an .npy "
                "file or a folder of .npy files"
            )
        if path.suffix.lower() == ".npy":
            return from_npy(path, graph)
        return from_npz(path, graph)
    if isinstance(source, Mapping):
        return from_arrays(dict(source), graph, "the dict of arrays")
    if isinstance(source, Iterable) and not isinstance(source, (bytes, np.ndarray)):
        return from_iterable(source, graph)
    raise InputError(
        f"calibration data must be a path, a dict of arrays or an iterable of "
        f"{{input name: array}} dicts, not {type(source).__name__}"
    )


def from_iterable(samples: Iterable[Sample], graph: Inputs) -> CalibrationData:
    """One sample per item; ``count`` is ``len(samples)`` when it has a length."""
    count = len(samples) if hasattr(samples, "__len__") else None  # type: ignore[arg-type]

    def gen() -> Iterator[tuple[str, Sample]]:
        for k, item in enumerate(samples):
            yield f"sample {k}", item

    return CalibrationData(graph, gen, count, "the Python iterable")


def from_npz(path: str | os.PathLike[str], graph: Inputs) -> CalibrationData:
    """Samples from an .npz archive keyed by input name (conventions in the module doc)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputError(
            f"cannot read calibration data {str(path)!r}: {e}. It should be an .npz archive "
            "of numeric arrays keyed by input name (numpy.savez)"
        ) from None
    return from_arrays(arrays, graph, repr(str(path)))


def from_npy(path: str | os.PathLike[str], graph: Inputs) -> CalibrationData:
    """Samples for a single-input model from one .npy array (conventions as an .npz key)."""
    path = Path(path)
    names = _names(graph)
    if len(names) != 1:
        raise InputError(
            f"calibration data {str(path)!r} is one array, but the model has "
            f"{len(names)} inputs ({', '.join(names)}); use an .npz keyed by "
            "input name or a folder with one subfolder per input"
        )
    return from_arrays({names[0]: _load_npy(path)}, graph, repr(str(path)))


def from_arrays(arrays: dict[str, Any], graph: Inputs, source: str) -> CalibrationData:
    """Samples from arrays keyed by input name, stacked on a new leading axis or single."""
    inputs = _inputs_of(graph)
    where = f"calibration data ({source})"
    for key in arrays:
        if key not in inputs:
            raise InputError(
                f"{where} has an array named {key!r}, but the model has no such input; its "
                f"inputs are {', '.join(_names(graph))}"
            )
    for name in inputs:
        if name not in arrays:
            raise InputError(
                f"{where} has no array for input {name!r} ({inputs[name]}); the keys must "
                f"be the model's input names: {', '.join(_names(graph))}"
            )
    counts: dict[str, int | None] = {}
    for name, t in inputs.items():
        counts[name] = _stack_count(np.asarray(arrays[name]), name, t, where)
    kinds = set(counts.values())
    if len(kinds) > 1:
        desc = ", ".join(
            f"{n!r}: {'one sample' if c is None else f'{c} samples'}" for n, c in counts.items()
        )
        raise InputError(
            f"{where} holds different numbers of samples per input ({desc}); every input "
            "needs the same number S of samples stacked on a leading axis"
        )
    stacked = kinds.pop() is not None
    count = next(iter(counts.values())) if stacked else 1

    def gen() -> Iterator[tuple[str, Sample]]:
        for k in range(count or 0):
            if stacked:
                yield f"sample {k} of {source}", {n: np.asarray(arrays[n])[k] for n in inputs}
            else:
                yield f"the single sample of {source}", arrays

    return CalibrationData(graph, gen, count, source)


def _stack_count(a: np.ndarray, name: str, t: TensorType | InputPattern,
                 where: str) -> int | None:
    """S for an array of shape (S, *t.shape); None for exactly t.shape; else an error."""
    if _fits(t, tuple(a.shape)):
        return None
    if a.ndim == t.rank + 1 and _fits(t, tuple(a.shape[1:])):
        return int(a.shape[0])
    hint = ""
    if isinstance(t, TensorType) and t.rank and a.ndim == t.rank and \
            tuple(a.shape[1:]) == t.shape[1:]:
        hint = (
            f" If its first axis holds several batches of the model's batch size "
            f"{t.shape[0]}, reshape it to (-1, {', '.join(str(d) for d in t.shape)}) first."
        )
    raise InputError(
        f"{where}: input {name!r} has shape {list(a.shape)}, but the model expects "
        f"{list(t.shape)} ({t}): give either [S, {', '.join(str(d) for d in t.shape)}] for S "
        f"samples stacked on a new leading axis, or exactly {list(t.shape)} for one "
        f"sample.{hint}"
    )


def from_folder(path: str | os.PathLike[str], graph: Inputs) -> CalibrationData:
    """One sample per .npy file (layout in the module doc); files load lazily."""
    folder = Path(path)
    names = _names(graph)
    if len(names) == 1:
        files = {names[0]: _npy_files(folder)}
    else:
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not subdirs:
            raise InputError(
                f"calibration folder {str(folder)!r} has no subfolders, but the model has "
                f"{len(names)} inputs ({', '.join(names)}): put each input's .npy files in a "
                "subfolder named like the input; sample k is the k-th file of each"
            )
        for d in subdirs:
            if d not in names and not d.startswith("."):
                raise InputError(
                    f"calibration folder {str(folder)!r} has a subfolder {d!r}, but the model "
                    f"has no such input; its inputs are {', '.join(names)}"
                )
        for n in names:
            if n not in subdirs:
                raise InputError(
                    f"calibration folder {str(folder)!r} has no subfolder for input {n!r}; "
                    f"expected one subfolder per input: {', '.join(names)}"
                )
        files = {n: _npy_files(folder / n) for n in names}
        sizes = {n: len(fs) for n, fs in files.items()}
        if len(set(sizes.values())) > 1:
            raise InputError(
                f"calibration folder {str(folder)!r}: the input subfolders hold different "
                f"numbers of .npy files ({', '.join(f'{n}: {c}' for n, c in sizes.items())}); "
                "sample k is the k-th file of every subfolder, so the counts must match"
            )
    count = len(next(iter(files.values())))

    def gen() -> Iterator[tuple[str, Sample]]:
        for k in range(count):
            chosen = {n: fs[k] for n, fs in files.items()}
            shown = ", ".join(repr(str(p)) for p in chosen.values())
            yield f"sample {k} (file {shown})", {n: _load_npy(p) for n, p in chosen.items()}

    if count == 0:
        raise InputError(
            f"calibration folder {str(folder)!r} holds no .npy files; save one sample per "
            "file with numpy.save"
        )
    return CalibrationData(graph, gen, count, repr(str(folder)))


def _npy_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".npy"),
        key=lambda p: p.name,
    )


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (ValueError, OSError, EOFError) as e:
        raise InputError(
            f"cannot read calibration file {str(path)!r}: {e}. It should be a numeric array "
            "saved with numpy.save"
        ) from None


def check_sample(
    inputs: Mapping[str, TensorType | InputPattern], sample: Any, where: str
) -> dict[str, np.ndarray]:
    """One sample checked against the inputs, converted to their dtypes."""
    if not isinstance(sample, Mapping):
        raise InputError(
            f"calibration {where} is a {type(sample).__name__}, not a dict "
            f"{{input name: array}}; the model's inputs are {', '.join(inputs)}"
        )
    for key in sample:
        if key not in inputs:
            raise InputError(
                f"calibration {where} gives input {key!r}, but the model has no such input; "
                f"its inputs are {', '.join(inputs)}"
            )
    out: dict[str, np.ndarray] = {}
    for name, t in inputs.items():
        if name not in sample:
            raise InputError(
                f"calibration {where} has no value for input {name!r}; expected an array "
                f"{t} for each of {', '.join(inputs)}"
            )
        out[name] = _check_array(sample[name], name, t, where)
    _check_names_agree(inputs, out, where)
    return out


def _check_names_agree(inputs: Mapping[str, TensorType | InputPattern],
                       arrays: Mapping[str, np.ndarray], where: str) -> None:
    """A dimension name shared by several inputs takes one size within a sample."""
    seen: dict[str, tuple[str, int]] = {}
    for name, t in inputs.items():
        if not isinstance(t, InputPattern):
            continue
        for d, size in zip(t.dims, arrays[name].shape):
            if not isinstance(d, str):
                continue
            first = seen.setdefault(d, (name, int(size)))
            if first[1] != size:
                raise InputError(
                    f"calibration {where}: dimension {d!r} is {first[1]} in input {first[0]!r} "
                    f"but {size} in input {name!r}; inputs sharing a dimension name must "
                    "agree on its size within a sample")


def _check_array(value: Any, name: str, t: TensorType | InputPattern,
                 where: str) -> np.ndarray:
    def fail(problem: str) -> InputError:
        return InputError(f"calibration {where}: input {name!r} {problem}")

    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise fail(f"is not an array ({e}); expected {t}") from None
    if a.dtype.kind not in "biuf":
        raise fail(f"has dtype {a.dtype}, which is not numeric; expected {t}")
    if not _fits(t, tuple(a.shape)):
        if isinstance(t, InputPattern):
            raise fail(
                f"has shape {list(a.shape)}, which the model's input {t} does not allow (its "
                "fixed sizes and rank must match; '?' and named dimensions may vary)")
        raise fail(
            f"has shape {list(a.shape)}, but the model expects {list(t.shape)} ({t}); every "
            "sample must match the input shape exactly, including its batch dimension"
        )
    if a.dtype.kind == "f":
        _check_finite(a, fail, "")
    want = t.dtype.np
    if a.dtype == want:
        return a
    if not _keeps_values(a, want):
        raise fail(
            f"has dtype {a.dtype}, which cannot be converted to the model's {want} ({t}) "
            f"without changing values; convert it first, e.g. array.astype(numpy.{want.name})"
        )
    with np.errstate(over="ignore"):  # out of range becomes inf, which the check names
        converted = a.astype(want)
    if want.kind == "f":
        _check_finite(converted, fail, f" after conversion to {want} (out of its range)")
    return converted


def _keeps_values(a: np.ndarray, want: np.dtype) -> bool:
    """True when casting ``a`` to ``want`` keeps every value (floats may round)."""
    if np.can_cast(a.dtype, want, casting="safe"):
        return True
    if a.dtype.kind == "f":
        return want.kind == "f"
    if want.kind == "f":  # integers to float: only if each one is exactly representable
        with np.errstate(over="ignore", invalid="ignore"):
            back = a.astype(want).astype(np.float64)
        return bool(np.array_equal(back, a.astype(np.float64)))
    if a.dtype.kind in "iu" and want.kind in "iu":
        info = np.iinfo(want)
        return a.size == 0 or bool(info.min <= a.min() and a.max() <= info.max)
    return False


def _check_finite(a: np.ndarray, fail: Callable[[str], InputError], when: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN" if np.isnan(a[first]) else "inf"
        raise fail(
            f"contains {int(bad.sum())} non-finite value(s){when}, the first a {what} at "
            f"index {list(first)}; calibration needs finite data"
        )


def _names(graph: Inputs) -> list[str]:
    return list(_inputs_of(graph))


def _empty(source: str) -> InputError:
    return InputError(
        f"calibration data ({source}) holds no samples; calibration needs at least one sample "
        "of every model input (a few hundred typical ones give stable ranges)"
    )
