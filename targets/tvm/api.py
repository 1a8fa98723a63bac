"""Apache TVM, imported on first use.

The kernel modules name ``te``, ``tir`` and ``relax`` at module level; the names below stand
for those TVM modules and import them only when an attribute is first read. So importing
qnnc never needs TVM, and using the tvm target without it raises one error that says what
to install. (TVM 0.27 calls its tensor IR ``tvm.tirx``; ``tir`` here is that module.)
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ir.errors import QnncError

INSTALL = ("pip install -e '.[tvm]' in qnnc's checkout (or: pip install "
           "apache-tvm==0.27.0.post1 'apache-tvm-ffi>=0.1.14.post0,<0.1.15')")
MISSING = f"the tvm target needs Apache TVM 0.27 (import tvm failed); install it with: {INSTALL}"


def require_tvm() -> ModuleType:
    """The ``tvm`` package; a QnncError saying how to install it when it is missing."""
    try:
        return importlib.import_module("tvm")
    except ImportError as e:
        raise QnncError(f"{MISSING} ({e})") from None


class _Deferred:
    """A TVM module imported when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._module is None:
            require_tvm()
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


te: Any = _Deferred("tvm.te")
tir: Any = _Deferred("tvm.tirx")
relax: Any = _Deferred("tvm.relax")
