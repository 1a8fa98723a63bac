"""The ``qnnc`` command's entry point: answers ``qnnc --version`` without importing the
compiler (onnx alone takes a second to import), then hands everything else to
:func:`compiler.cli.main`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"qnnc {version('qnnc')}")
        except PackageNotFoundError:
            print("qnnc 0+unknown")
        return 0
    from compiler.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
