"""Reading the data a user feeds to a model (.npy / .npz files), making seeded random inputs,
writing outputs, and parsing ``name=1x3x224x224`` shape overrides.

Every problem is reported as :class:`InputError` naming the file or input at fault, since
these are the first things a new user gets wrong.

Example::

    >>> parse_shape("1x3x224x224")
    (1, 3, 224, 224)
    >>> parse_input_shape("images=1x3x32x32")
    ('images', (1, 3, 32, 32))
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from compiler.array_files import check_array_file
from compiler.budget import DEFAULT_MAX_TENSOR_BYTES, over_budget
from compiler.errors import InputError, QnncError
from compiler.folders import apply_umask
from ir.types import TensorType


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` (or ``"1,3,224,224"``) -> ``(1, 3, 224, 224)``."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise QnncError(
            f"bad shape {text!r}: write the dimensions separated by 'x', e.g. 1x3x224x224"
        ) from None
    if not dims or any(d <= 0 for d in dims):
        raise QnncError(f"bad shape {text!r}: every dimension must be a positive integer")
    return dims


def parse_input_shape(spec: str) -> tuple[str, tuple[int, ...]]:
    """``"name=1x3x224x224"`` -> ``("name", (1, 3, 224, 224))``."""
    name, sep, shape = spec.rpartition("=")
    if not sep or not name:
        raise QnncError(
            f"bad --input-shape {spec!r}: write it as NAME=DIMS, e.g. --input-shape "
            "input=1x3x224x224"
        )
    return name, parse_shape(shape)


def parse_input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Several ``name=dims`` specs as a dict; a name given twice is an error."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, shape = parse_input_shape(spec)
        if name in out:
            raise QnncError(f"--input-shape gives input {name!r} twice")
        out[name] = shape
    return out


def _split_spec(spec: str) -> tuple[str | None, Path]:
    """``name=path`` or a bare ``path`` (an existing file named with '=' stays a path)."""
    if "=" in spec and not Path(spec).exists():
        name, path = spec.split("=", 1)
        if name:
            return name, Path(path)
    return None, Path(spec)


def _load_array_file(path: Path, budget: int) -> np.ndarray | dict[str, np.ndarray]:
    if not path.exists():
        raise InputError(f"input file {str(path)!r} does not exist")
    if not path.is_file():
        raise InputError(f"input path {str(path)!r} is not a file")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise InputError(
            f"input file {str(path)!r} must be a .npy array or an .npz archive of arrays "
            "(save one with numpy.save / numpy.savez)"
        )
    check_array_file(path, budget)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {k: np.asarray(loaded[k]) for k in loaded.files}
        return np.asarray(loaded)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputError(
            f"cannot read input file {str(path)!r}: {e}. Is it a numpy {suffix} file "
            "holding plain numeric arrays?"
        ) from None


def read_inputs(specs: Sequence[str], input_names: Sequence[str],
                budget: int | None = None) -> dict[str, np.ndarray]:
    """Feeds from ``--input`` specs: ``x.npy``, ``name=x.npy`` or ``data.npz``.

    A bare .npy is accepted when the model has exactly one input; an .npz maps its keys to
    input names (keys that are not input names are an error), except numpy's unnamed
    ``arr_0, arr_1, ...``, which are taken in the model's input order.
    Checking the arrays against the model (names, shapes, dtypes) is left to the caller;
    an array whose header declares more than ``budget`` bytes (default 1 GiB) is refused
    before it is read.
    """
    feeds: dict[str, np.ndarray] = {}

    def put(name: str, arr: np.ndarray, src: str) -> None:
        if name in feeds:
            raise InputError(f"input {name!r} is given twice (again by {src!r})")
        feeds[name] = arr

    for spec in specs:
        name, path = _split_spec(spec)
        data = _load_array_file(path, budget or DEFAULT_MAX_TENSOR_BYTES)
        if isinstance(data, dict):
            if name is not None:
                if len(data) != 1:
                    raise InputError(
                        f"{str(path)!r} holds {len(data)} arrays; give a .npy file for "
                        f"input {name!r}, or pass the .npz without a name"
                    )
                put(name, next(iter(data.values())), str(path))
            elif _positional(data) and len(data) <= len(input_names):
                for k, arr in enumerate(data[f"arr_{k}"] for k in range(len(data))):
                    put(input_names[k], arr, str(path))
            else:
                unknown = sorted(set(data) - set(input_names))
                if unknown:
                    raise InputError(
                        f"{str(path)!r} holds array(s) named {unknown}, which are not inputs "
                        f"of the model (its inputs: {', '.join(input_names)}); save the "
                        "arrays under the input names, e.g. numpy.savez(path, "
                        f"{input_names[0] if input_names else 'name'}=array)"
                    )
                for key, arr in data.items():
                    put(key, arr, str(path))
            continue
        if name is None:
            if len(input_names) != 1:
                raise InputError(
                    f"{str(path)!r} has no input name, but the model has {len(input_names)} "
                    f"inputs ({', '.join(input_names)}); write --input NAME={path}"
                )
            name = input_names[0]
        put(name, data, str(path))
    return feeds


def _positional(data: Mapping[str, np.ndarray]) -> bool:
    """The keys numpy.savez gives to arrays passed without names: arr_0, arr_1, ..."""
    return bool(data) and set(data) == {f"arr_{k}" for k in range(len(data))}


def random_inputs(types: Mapping[str, TensorType], seed: int = 0,
                  budget: int | None = None) -> dict[str, np.ndarray]:
    """Seeded random data of the right shapes and dtypes, for a first run of a model.

    Floats are standard normal; integers are drawn from [0, 10) so that index-like inputs
    stay in range for small tables; booleans are fair coin flips. An input over ``budget``
    bytes (default 1 GiB) is refused before anything is drawn.
    """
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"the random seed must be a non-negative integer, got {seed!r}")
    for name, t in types.items():
        big = over_budget(f"random input {name!r}", t.shape, t.dtype.np.itemsize,
                          budget or DEFAULT_MAX_TENSOR_BYTES)
        if big:
            raise InputError(big)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, t in types.items():
        dt = t.dtype.np
        if t.dtype.is_float:
            arr = rng.standard_normal(t.shape).astype(dt)
        elif t.dtype.is_int:
            arr = rng.integers(0, 10, size=t.shape).astype(dt)
        else:
            arr = rng.random(t.shape) < 0.5
        out[name] = np.ascontiguousarray(arr)
    return out


def check_new_file(path: Path, flag: str, force: bool) -> None:
    """Refuse to overwrite an existing ``path`` (or any folder) unless ``force``."""
    if path.is_dir():
        raise QnncError(f"cannot write {str(path)!r}: it is a folder")
    if path.exists() and not force:
        raise QnncError(f"{flag} {str(path)!r} already exists; refusing to overwrite it. "
                        "Choose another name, or pass --force to replace it.")


def write_outputs(path: str | os.PathLike[str], outputs: Mapping[str, np.ndarray], *,
                  force: bool = False) -> None:
    """Save ``outputs`` as an .npz (keys = output names), atomically: a crash leaves either
    the previous file or the new one, never a partial archive. An existing file is kept
    unless ``force``."""
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise QnncError(f"--output {str(p)!r} must end in .npz")
    check_new_file(p, "--output", force)
    parent = p.resolve().parent
    if not parent.is_dir():
        raise QnncError(f"cannot write {str(p)!r}: folder {str(parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp.npz", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as zf:
            for key, arr in outputs.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, np.asanyarray(arr), allow_pickle=False)
        apply_umask(Path(tmp))  # mkstemp makes 0600 files
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
