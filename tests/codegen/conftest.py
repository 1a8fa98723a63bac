"""Fixtures of the code generation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def every_layer_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Share out every layer's loops, however small (tests of the threaded code paths on
    small shapes; builds keep layers below targets.c.emitter.MIN_PARALLEL_NS on one
    thread)."""
    import targets.c.emitter

    monkeypatch.setattr(targets.c.emitter, "MIN_PARALLEL_NS", 0)
