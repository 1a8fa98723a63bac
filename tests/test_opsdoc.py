"""The committed op list in docs/ops.md is what the registries say."""

from __future__ import annotations

from compiler.frontend.registry import CONVERTERS
from compiler.opsdoc import DOC_PATH, render


def test_docs_ops_md_is_current() -> None:
    assert DOC_PATH.read_text() == render(), (
        "docs/ops.md is out of date: run `python -m compiler.opsdoc --write`"
    )


def test_every_converter_is_listed() -> None:
    text = render()
    for op in CONVERTERS:
        assert f"| {op} |" in text
