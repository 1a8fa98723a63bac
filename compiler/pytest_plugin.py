"""pytest plugin: golden-output tests of compiled models in three lines.

Installed with qnnc (entry point ``pytest11: qnnc``), it provides the ``qnnc_golden`` fixture
and the ``--qnnc-update-goldens`` option::

    def test_my_model(qnnc_golden):
        model = compiler.compile_model("my.onnx")
        qnnc_golden.check(model, {"input": x}, "goldens/my_model")

``check`` runs the model on the inputs and compares every output with the golden folder
(relative paths are resolved against the test file's folder): integers exactly, floats
within the stored tolerance (see compiler/golden/). A mismatch fails the test with a
per-output report: how many elements differ, where, the worst errors, and whether the
compiled IR changed.

When the folder does not exist yet the test FAILS and says to run
``pytest --qnnc-update-goldens``. Recording silently on a first run would make a test pass
that has checked nothing — and a golden deleted by mistake would re-record whatever the
compiler now computes, hiding the very regression it guards against. With
``--qnnc-update-goldens`` missing goldens are recorded and mismatching ones rewritten; those
tests pass, and the session summary lists every folder written so the change can be reviewed
in version control.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from compiler.golden import GoldenResult

UPDATE_OPTION = "--qnnc-update-goldens"
_WRITTEN = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qnnc", "qnnc golden outputs")
    group.addoption(
        UPDATE_OPTION, action="store_true", default=False,
        help="record missing qnnc golden outputs and rewrite mismatching ones",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_WRITTEN] = []


class GoldenMismatch(AssertionError):
    """A model's outputs no longer match its golden (or there is no golden yet)."""


class GoldenChecker:
    """What the ``qnnc_golden`` fixture returns: :meth:`check` compares against a golden."""

    def __init__(self, base: Path, update: bool, written: list[str]) -> None:
        self.base = base
        self.update = update
        self._written = written

    def path(self, golden: str | os.PathLike[str]) -> Path:
        p = Path(golden)
        return p if p.is_absolute() else self.base / p

    def check(
        self, model: Any, inputs: dict[str, Any], golden: str | os.PathLike[str], *,
        rtol: float | None = None, atol: float | None = None,
    ) -> GoldenResult | None:
        """Compare ``model``'s outputs on ``inputs`` with the golden folder ``golden``.

        ``model`` is a CompiledModel (any target) or anything compile_model accepts (then
        compiled for the interpreter). ``rtol``/``atol`` replace the float tolerance.
        Returns the result (None when a golden was just recorded); raises an
        AssertionError with the per-output report on a mismatch.
        """
        __tracebackhide__ = True
        from compiler.api import CompiledModel, compile_model
        from compiler.golden import MANIFEST, check_outputs, record_outputs

        cm = model if isinstance(model, CompiledModel) else compile_model(model)
        folder = self.path(golden)
        if not (folder / MANIFEST).is_file():
            if not self.update:
                raise GoldenMismatch(
                    f"no golden outputs at {folder}; record them with `pytest "
                    f"{UPDATE_OPTION}` (then review and commit the new folder)"
                )
            record_outputs(cm, inputs, folder, rtol=rtol, atol=atol)
            self._written.append(f"recorded {folder}")
            return None
        res = check_outputs(cm, folder, inputs, update=self.update, rtol=rtol, atol=atol)
        if res.updated:
            self._written.append(f"updated {folder}")
        elif not res.passed:
            raise GoldenMismatch(
                f"{res.report()}\nIf the change is intended, rewrite the golden with "
                f"`pytest {UPDATE_OPTION}`."
            )
        return res


@pytest.fixture
def qnnc_golden(request: pytest.FixtureRequest) -> GoldenChecker:
    """Compare compiled models' outputs with golden folders next to the test file."""
    return GoldenChecker(Path(request.path).parent,
                         bool(request.config.getoption(UPDATE_OPTION)),
                         request.config.stash[_WRITTEN])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written = config.stash.get(_WRITTEN, [])
    if written:
        terminalreporter.section("qnnc goldens written")
        for line in written:
            terminalreporter.write_line(line)
