"""User-facing errors. Each carries a message written for the person running qnnc: what is
wrong, where (file, node, tensor), and what to do about it. The CLI prints the message and
exits non-zero; it never shows a traceback for these."""

from __future__ import annotations


class QnncError(Exception):
    """Base of every error qnnc reports to users."""

    exit_code = 1


class ModelLoadError(QnncError):
    """The model file is missing, unreadable, not ONNX, or fails onnx's checker."""

    exit_code = 2


class UnsupportedModelError(QnncError):
    """The model uses ops, types or features qnnc does not support (yet)."""

    exit_code = 3


class ConversionError(QnncError):
    """A node could not be converted to the IR (bad attributes, dynamic shapes, ...)."""

    exit_code = 3


class InputError(QnncError):
    """Data given to run or calibrate the model does not fit it."""

    exit_code = 4


def index_out_of_range(node: str, op: str, detail: str = "") -> str:
    """The one message every path (interpreter, host C, staged C) gives when an index read
    at run time falls outside its axis (docs/architecture.md "Defined meaning")."""
    what = detail or "an index read from the data fed to the model is outside its axis"
    return (f"node {node!r} ({op}): {what}. ONNX leaves such an index undefined, so qnnc "
            "stops rather than answer differently on each target; check the input data "
            "(valid indices along an axis of size n are -n..n-1)")
