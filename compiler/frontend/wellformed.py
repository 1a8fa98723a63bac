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
    for field, value in msg.ListFields():
        items = list(value) if field.is_repeated else [value]
        for i, item in enumerate(items):
            where = f"{path}.{field.name}" + (f"[{i}]" if field.is_repeated else "")
            if field.type == FieldDescriptor.TYPE_STRING and isinstance(item, bytes):
                yield where
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                yield from bad_text_fields(item, where)


def check_text_fields(model: Message, where: str) -> None:
    """Raise :class:`ModelLoadError` naming the first text field that is not UTF-8."""
    bad = next(bad_text_fields(model), None)
    if bad is not None:
        raise ModelLoadError(
            f"{where}: the text in {bad} is not valid UTF-8 (ONNX names and strings must be "
            "UTF-8); the file is damaged or was written by a broken exporter. Re-export the "
            "model, or fix that name with onnx's tools."
        )
