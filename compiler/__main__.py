"""``python -m compiler``: the `qnnc` command (compiler/entry.py)."""

import sys

from compiler.entry import main

if __name__ == "__main__":
    sys.exit(main())
