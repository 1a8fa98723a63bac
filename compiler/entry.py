"""The `qnnc` console script. Ctrl-C at any moment, even while numpy and onnx are still being
imported in the first second, ends qnnc with one line and exit code 130, never a
KeyboardInterrupt traceback (``--debug`` shows one once the CLI has started)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

INTERRUPTED = 130


def _interrupted() -> int:
    try:
        sys.stderr.write("qnnc: error: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError, KeyboardInterrupt):
        pass
    return INTERRUPTED


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
        from compiler.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        if argv is None and "--debug" in sys.argv[1:] and "compiler.cli" in sys.modules:
            raise
        return _interrupted()


if __name__ == "__main__":
    sys.exit(main())
