"""Reading ONNX files safely: clear errors for missing, truncated or invalid files, and
external data confined to the model's own folder."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto
from onnx.external_data_helper import uses_external_data

from compiler.errors import ModelLoadError
from compiler.frontend.wellformed import check_text_fields

MIN_OPSET = 7


def max_opset() -> int:
    """The newest default-domain opset the installed onnx package knows."""
    return int(onnx.defs.onnx_opset_version())


def load_onnx(path: str | os.PathLike[str], *, check: bool = True) -> ModelProto:
    """Load and check an ONNX model file. Raises :class:`ModelLoadError` with a clear reason."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file {str(p)!r} does not exist")
    if not p.is_file():
        raise ModelLoadError(f"model path {str(p)!r} is not a file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ModelLoadError(f"cannot read model file {str(p)!r}: {e.strerror}") from None
    if not raw:
        raise ModelLoadError(f"model file {str(p)!r} is empty")
    model = ModelProto()
    try:
        model.ParseFromString(raw)
    except (DecodeError, ValueError, RuntimeError):
        raise ModelLoadError(
            f"{str(p)!r} is not a valid ONNX model: the protobuf data could not be decoded "
            "(is the file truncated, or not an .onnx file?)"
        ) from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise ModelLoadError(
            f"{str(p)!r} is not an ONNX model: it has no graph or no IR version "
            "(is it an .onnx file?)"
        )
    check_text_fields(model, str(p))
    _load_external_data(model, p.resolve().parent, str(p))
    if check:
        check_model(model, str(p), text_checked=True)
    return model


_RUNTIME_DOMAIN = "qnnc.runtime-default-domain"


def _checkable(model: ModelProto) -> ModelProto:
    """``model``, or a copy in which the default-domain ops onnx has no schema for but qnnc
    converts (onnxruntime registers a few of its own there, which its optimiser writes:
    SimplifiedLayerNormalization) sit in a domain of their own, which the checker leaves to
    the runtime as it does com.microsoft's."""
    import compiler.frontend.ops  # noqa: F401  (registers the converters)
    from compiler.frontend.registry import CONVERTERS

    def runtime_op(n: onnx.NodeProto) -> bool:
        return (n.domain in ("", "ai.onnx") and n.op_type in CONVERTERS
                and not onnx.defs.has(n.op_type))

    if not any(runtime_op(n) for n in model.graph.node):
        return model
    copy = ModelProto()
    copy.CopyFrom(model)
    for n in copy.graph.node:
        if runtime_op(n):
            n.domain = _RUNTIME_DOMAIN
    copy.opset_import.add(domain=_RUNTIME_DOMAIN, version=1)
    return copy


def check_model(model: ModelProto, where: str = "model", *, text_checked: bool = False) -> None:
    """Run onnx's checker and opset checks, turning failures into :class:`ModelLoadError`.
    ``text_checked``: the caller has already run :func:`check_text_fields` on ``model`` (a
    walk over every message, which a large model's loading should not pay twice)."""
    if not text_checked:
        check_text_fields(model, where)
    try:
        onnx.checker.check_model(_checkable(model))
    except UnicodeDecodeError:
        raise ModelLoadError(f"{where} holds text that is not valid UTF-8; re-export the "
                             "model") from None
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        first = first.rstrip(".")
        raise ModelLoadError(
            f"{where} fails onnx's model checker: {first}. Re-export the model, or repair it "
            "with onnx's tools, then try again."
        ) from None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            if imp.version < MIN_OPSET:
                raise ModelLoadError(
                    f"{where} uses opset {imp.version}; qnnc supports opsets {MIN_OPSET} to "
                    f"{max_opset()}. Convert it with onnx.version_converter first."
                )
            if imp.version > max_opset():
                raise ModelLoadError(
                    f"{where} uses opset {imp.version}, newer than the installed onnx "
                    f"({max_opset()}); upgrade the onnx package."
                )


def _load_external_data(model: ModelProto, base: Path, where: str) -> None:
    """Load tensors stored outside the .onnx file, refusing any path that leaves ``base``.

    qnnc reads the bytes itself (onnx's reader refuses every symbolic link, even one that
    stays inside the folder); the resolved file must lie inside ``base``."""
    for t in _all_tensors(model):
        if uses_external_data(t):
            _read_external(t, base, where)


def _read_external(t: onnx.TensorProto, base: Path, where: str) -> None:
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location")
    what = f"{where}: tensor {t.name!r}"
    if not loc:
        raise ModelLoadError(f"{what} has external data without a location")
    if "\0" in loc:
        raise ModelLoadError(f"{what} has an external data location with a NUL character "
                             f"({loc!r}); the file is damaged. Re-export the model.")
    if os.path.isabs(loc) or Path(loc).drive:
        raise ModelLoadError(
            f"{what} points to absolute path {loc!r}; external data must sit in the model's "
            "folder"
        )
    try:
        target = (base / loc).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ModelLoadError(f"{what}: cannot resolve external data path {loc!r}: {e}") from None
    if base != target and base not in target.parents:
        raise ModelLoadError(
            f"{what} points to {loc!r}, outside the model's folder; refusing to read it"
        )
    if not target.is_file():
        raise ModelLoadError(
            f"{where}: external data file {loc!r} for tensor {t.name!r} is missing (or not a "
            "regular file); keep it beside the model file"
        )
    offset, length = _int_field(info, "offset", what) or 0, _int_field(info, "length", what)
    try:
        with open(target, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset > size or (length is not None and offset + length > size):
                raise ModelLoadError(
                    f"{what} reads bytes {offset}..{offset + (length or 0)} of {loc!r}, which "
                    f"has {size} bytes; the data file is truncated or belongs to another "
                    "model")
            f.seek(offset)
            data = f.read(size - offset if length is None else length)
    except OSError as e:
        raise ModelLoadError(f"{what}: cannot read external data {loc!r}: {e.strerror}") \
            from None
    t.raw_data = data
    del t.external_data[:]
    t.data_location = onnx.TensorProto.DEFAULT


def _int_field(info: dict[str, str], key: str, what: str) -> int | None:
    text = info.get(key)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ModelLoadError(f"{what} has external data {key} {text!r}, not a byte count")
    return value


def _all_tensors(model: ModelProto) -> list[onnx.TensorProto]:
    out = list(model.graph.initializer)
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                out.append(a.t)
    return out
