"""Broadcasting binary and variadic ops: arithmetic, comparison, logic, selection."""

from __future__ import annotations

import numpy as np

from ir.ops.common import binary

binary("Add", lambda x, y: np.add(x, y), "z = x + y (numpy broadcasting)")
