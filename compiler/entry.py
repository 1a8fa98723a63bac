"""The `qnnc` console script. Ctrl-C at any moment, even while numpy and onnx are still being
imported in the first second, ends qnnc with one line and exit code 130, never a
KeyboardInterrupt traceback (``--debug`` shows one once the CLI has started).

While the CLI is being imported, SIGINT ends the process at once (nothing has been written
yet): a KeyboardInterrupt raised there can land inside importlib's own callbacks, where
Python prints it as an ignored exception with a traceback and carries on importing. Once
the CLI runs, Ctrl-C is a KeyboardInterrupt again, so its clean-up runs."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

INTERRUPTED = 130


def _interrupted() -> int:
    try:
        sys.stderr.write("qnnc: error: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError, KeyboardInterrupt):
        pass
    return INTERRUPTED


class _exit_on_interrupt:  # noqa: N801 - used as a statement
    """SIGINT exits with the one-line message and 130 inside the block (the main thread's
    handler is swapped in and back; elsewhere nothing changes)."""

    def __enter__(self) -> None:
        self.previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, _exit_now)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _exit_now(signum: int, frame: object) -> None:
    os._exit(_interrupted())


def main(argv: Sequence[str] | None = None) -> int:
    """Import the CLI and run it, turning Ctrl-C during the import into exit code 130;
    ``qnnc --version`` is answered without importing the compiler (onnx alone takes a
    second)."""
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"qnnc {version('qnnc')}")
        except PackageNotFoundError:
            print("qnnc 0+unknown")
        return 0
    try:
        with _exit_on_interrupt():
            from compiler.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        if argv is None and "--debug" in sys.argv[1:] and "compiler.cli" in sys.modules:
            raise
        return _interrupted()


if __name__ == "__main__":
    sys.exit(main())
