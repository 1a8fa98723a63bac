"""Mutators over serialised ONNX models, driven by a ``random.Random`` so every case is
reproducible from (seed, index).

``mutate_bytes`` damages the file as a disk or a network would (bit flips, cut, inserted or
repeated runs, interesting integers written over the varints). ``mutate_fields`` damages it
as a broken exporter would: it parses the model, picks protobuf fields anywhere in it (dims,
element types, attribute values, tensor data, names, op types, node order) and sets them to
values at the edges (0, -1, huge, other ops' names, text that is not UTF-8), then serialises.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 8, 16, 255, 256, 1 << 16, 1 << 31, -(1 << 31),
                    (1 << 31) - 1, 1 << 40, 10**12, -(10**12), (1 << 63) - 1, -(1 << 63), 999]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e38, -1e38, float("inf"),
                      float("-inf"), float("nan"), 3e4, 1e12]
OP_TYPES = ["Relu", "Add", "Conv", "Gemm", "Reshape", "Concat", "Gather", "Slice", "Tile",
            "Expand", "Resize", "ConstantOfShape", "Range", "Loop", "If", "Scan", "Split",
            "Transpose", "Pad", "TopK", "NonZero", "Einsum", "Cast", "MaxPool", "Softmax",
            "QuantizeLinear", "Identity", "NoSuchOp", ""]
STRINGS = ["", "x", "y", "input", "output", "\u00e9\u4e2d", "a" * 300, "../../etc/passwd",
           "*/", "\x00", "conv1", "s", "target"]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        kind = rng.randrange(6)
        i = rng.randrange(len(buf))
        if kind == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[i] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x12, 0x1A, 0x22])
        elif kind == 2:
            del buf[i:i + rng.randint(1, 16)]
        elif kind == 3:
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 4:
            j = rng.randrange(len(buf))
            buf[i:i] = buf[j:j + rng.randint(1, 32)]
        else:
            del buf[rng.randrange(len(buf) // 2 + 1, len(buf) + 1):]
    return bytes(buf)


def _fields(msg: Message, out: list[tuple[Message, FieldDescriptor]]) -> None:
    """Every (message, field) pair in ``msg`` that is set, recursively."""
    for field, value in msg.ListFields():
        out.append((msg, field))
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in (value if field.is_repeated else [value]):
                _fields(item, out)


def _scalar(field: FieldDescriptor, rng: random.Random) -> object:
    t = field.type
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return rng.choice(INTERESTING_FLOATS)
    if t == FieldDescriptor.TYPE_STRING:
        return rng.choice(STRINGS + OP_TYPES)
    if t == FieldDescriptor.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 4, 8, 13, 64])))
    if t == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    values = INTERESTING_INTS
    if t == FieldDescriptor.TYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values] + [0, 99])
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64):
        values = [v for v in values if v >= 0]
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32):
        values = [v for v in values if -(1 << 31) <= v < (1 << 32)]
        if t == FieldDescriptor.TYPE_INT32:
            values = [v for v in values if v < (1 << 31)]
    return rng.choice(values)


def _set_one(msg: Message, field: FieldDescriptor, rng: random.Random) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        container = getattr(msg, field.name)
        if field.is_repeated and len(container):
            i = rng.randrange(len(container))
            choice = rng.randrange(3)
            if choice == 0:
                del container[i]
            elif choice == 1:
                container.add().CopyFrom(container[i])
            else:
                j = rng.randrange(len(container))
                a, b = type(container[i])(), type(container[j])()
                a.CopyFrom(container[i])
                b.CopyFrom(container[j])
                container[i].CopyFrom(b)
                container[j].CopyFrom(a)
        elif not field.is_repeated:
            msg.ClearField(field.name)
        return
    if field.is_repeated:
        container = getattr(msg, field.name)
        choice = rng.randrange(4)
        if choice == 0 and len(container):
            del container[rng.randrange(len(container))]
        elif choice == 1:
            container.append(_scalar(field, rng))
        elif len(container):
            container[rng.randrange(len(container))] = _scalar(field, rng)
        return
    setattr(msg, field.name, _scalar(field, rng))


def mutate_fields(data: bytes, rng: random.Random) -> bytes:
    """One to three field-level edits of the model in ``data``."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        return data
    for _ in range(rng.randint(1, 3)):
        found: list[tuple[Message, FieldDescriptor]] = []
        _fields(model, found)
        if not found:
            break
        msg, field = rng.choice(found)
        try:
            _set_one(msg, field, rng)
        except (ValueError, TypeError, OverflowError):  # a value the field cannot hold
            pass
    try:
        return model.SerializeToString()
    except Exception:  # noqa: BLE001 - e.g. text protobuf itself will not encode
        return data


def bad_utf8(data: bytes, rng: random.Random) -> bytes:
    """A name somewhere in the file made invalid UTF-8 (same length)."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        return mutate_bytes(data, rng)
    names = [n.name for n in model.graph.node if isinstance(n.name, str) and len(n.name) >= 2]
    if not names:
        return mutate_bytes(data, rng)
    old = rng.choice(names).encode()
    return data.replace(old, old[:1] + b"\xff" + old[2:], 1)


MUTATORS: list[Callable[[bytes, random.Random], bytes]] = [
    mutate_bytes, mutate_fields, mutate_fields, bad_utf8]


def mutant(seeds: tuple[bytes, ...], seed: int, index: int) -> bytes:
    """Case ``index`` of the run with ``seed``: a seed model through one to three mutators."""
    rng = random.Random(f"{seed}/{index}")
    data = rng.choice(seeds)
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATORS)(data, rng)
    return data
