"""User-facing errors, re-exported for the compiler layer. They are defined in ir/errors.py,
at the bottom of the layering (ir ← targets ← compiler), so that every layer can raise them."""

from ir.errors import (
    ConversionError,
    InputError,
    ModelLoadError,
    QnncError,
    UnsupportedModelError,
)

__all__ = ["ConversionError", "InputError", "ModelLoadError", "QnncError",
           "UnsupportedModelError"]
