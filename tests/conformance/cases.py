"""ONNX backend node test cases, grouped by the op they test, with qnnc's exclusions."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

from onnx import ModelProto
from onnx.backend.test.case.test_case import TestCase

from compiler.frontend.registry import CONVERTERS

EXCLUSIONS_FILE = Path(__file__).with_name("exclusions.txt")


@cache
def node_cases() -> list[TestCase]:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(load_model_tests(kind="node"))


def exclusions() -> dict[str, str]:
    """test name -> reason, from exclusions.txt."""
    out: dict[str, str] = {}
    for line in EXCLUSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("#")
        if not reason.strip():
            raise ValueError(f"exclusion {name.strip()!r} needs a reason after '#'")
        out[name.strip()] = reason.strip()
    return out


def op_types(model: ModelProto) -> list[str]:
    """The op types a model uses, in its subgraphs (If, Loop, Scan bodies) too."""
    from compiler.frontend.scope import walk_nodes

    seen: list[str] = []
    for n in walk_nodes(model.graph.node):
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        if key not in seen:
            seen.append(key)
    return seen


def op_under_test(case: TestCase) -> str:
    """The op a node test is about: the one its name starts with, else its first node's."""
    assert case.model is not None
    ops = op_types(case.model)
    flat = case.name.removeprefix("test_").replace("_", "").lower()
    matches = [op for op in ops if flat.startswith(op.lower())]
    return max(matches, key=len) if matches else ops[0]


def unsupported(case: TestCase) -> list[str]:
    assert case.model is not None
    return [op for op in op_types(case.model) if op not in CONVERTERS]
