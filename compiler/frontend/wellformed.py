"""Checks on a parsed ONNX protobuf that onnx's checker does not make (or makes with a
traceback): every text field decodes as UTF-8. Run before the checker, which raises
UnicodeDecodeError on such text instead of a validation error."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from compiler.errors import ModelLoadError


def bad_text_fields(msg: Message, path: str = "model") -> Iterator[str]:
    """Where ``msg`` holds text that is not valid UTF-8, as field paths
    (``model.graph.node[3].name``). protobuf hands such text back as bytes."""
    for where in _bad(msg):
        yield path + "".join(where)


_STRING, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE


def _bad(msg: Message) -> Iterator[list[str]]:
    """:func:`bad_text_fields` with each path as its steps, made only for what it finds (a
    model has thousands of fields, all of them checked on every import)."""
    for field, value in msg.ListFields():
        kind = field.type
        if kind != _STRING and kind != _MESSAGE:
            continue
        items = value if field.is_repeated else (value,)
        for i, item in enumerate(items):
            if kind == _STRING:
                if isinstance(item, bytes):
                    yield [_step(field, i)]
                continue
            for inner in _bad(item):
                yield [_step(field, i), *inner]


def _step(field: FieldDescriptor, i: int) -> str:
    return f".{field.name}" + (f"[{i}]" if field.is_repeated else "")


def check_text_fields(model: Message, where: str) -> None:
    """Raise :class:`ModelLoadError` naming the first text field that is not UTF-8."""
    bad = next(bad_text_fields(model), None)
    if bad is not None:
        raise ModelLoadError(
            f"{where}: the text in {bad} is not valid UTF-8 (ONNX names and strings must be "
            "UTF-8); the file is damaged or was written by a broken exporter. Re-export the "
            "model, or fix that name with onnx's tools."
        )
