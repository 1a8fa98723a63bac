"""Fixtures of the code generation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def every_layer_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Share out every layer's loops, however small (tests of the threaded code paths on
    small shapes; builds keep layers below targets.c.emitter.MIN_PARALLEL_NS on one
    thread, and a model whose shareable layers take under MIN_SHARED_NS together is built
    for one thread)."""
    import targets.c.emitter

    monkeypatch.setattr(targets.c.emitter, "MIN_PARALLEL_NS", 0)
    monkeypatch.setattr(targets.c.emitter, "MIN_SHARED_NS", 0)
