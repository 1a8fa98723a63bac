"""``python -m compiler``: the `qnnc` command (compiler/entry.py)."""

import sys

from compiler.entry import main

sys.exit(main())
