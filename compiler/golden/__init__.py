"""Golden outputs: record what a compiled model computes, and catch any later change.

A golden test pins the outputs of one model, compiled one way, for one target, on stored
inputs. When a compiler change alters them, the check says which output moved, where (the
first few multi-indices), by how much (worst absolute and relative error), and whether the
compiled IR changed too. Intended changes are accepted by rewriting the golden (``update``).

**One golden folder** (what :func:`check_outputs` reads and the pytest plugin writes)::

    FOLDER/manifest.json   qnnc version, target, precision, options, IR hash, and per output
                           its dtype, shape and how it is compared (exact, or rtol/atol)
    FOLDER/inputs.npz      the feeds, keyed by input name
    FOLDER/outputs.npz     the recorded outputs, keyed by output name

**A golden set** (what ``qnnc golden record`` writes, :func:`record_set` / :func:`check_set`)
adds what is needed to recompile without the user's files::

    DIR/manifest.json      the set: model file + sha256 + source path, options, targets
    DIR/model.onnx         a copy of the model: the golden stays checkable when the original
                           moves or changes (the source path and its sha256 are kept only
                           to say so)
    DIR/calib.npz          INT8 only: the calibration samples, stacked on a leading axis
    DIR/<target>/          one golden folder per target (interp, host, ...)

Every write is atomic: a failure leaves the previous golden.

Where each part lives:

- :mod:`compiler.golden.compare`: comparing one output, and the tolerance rules (exact for
  integers, rtol/atol for floats, 0 for the dequantised outputs of INT8 models).
- :mod:`compiler.golden.facts`: what a golden notes about the compiled model (target name,
  precision, IR hash, quantisation steps).
- :mod:`compiler.golden.folder`: one golden folder — :func:`record_outputs`,
  :func:`check_outputs`, :class:`GoldenResult`.
- :mod:`compiler.golden.goldenset`: golden sets — :class:`GoldenOptions`, :func:`record_set`,
  :func:`check_set`.
"""

from __future__ import annotations

# __all__ is the API; the names imported `as` themselves are importable from here too, for
# the CLI, the pytest plugin and the tests.
from compiler.golden.compare import DEFAULT_ATOL as DEFAULT_ATOL
from compiler.golden.compare import DEFAULT_RTOL as DEFAULT_RTOL
from compiler.golden.compare import MAX_POSITIONS as MAX_POSITIONS
from compiler.golden.compare import OutputReport, Tolerance, compare_output
from compiler.golden.compare import default_tolerance as default_tolerance
from compiler.golden.facts import INTERP as INTERP
from compiler.golden.facts import compile_target as compile_target
from compiler.golden.facts import golden_targets, ir_hash
from compiler.golden.facts import model_precision as model_precision
from compiler.golden.facts import quant_steps as quant_steps
from compiler.golden.facts import target_of as target_of
from compiler.golden.folder import FORMAT as FORMAT
from compiler.golden.folder import INPUTS as INPUTS
from compiler.golden.folder import MANIFEST as MANIFEST
from compiler.golden.folder import OUTPUTS as OUTPUTS
from compiler.golden.folder import GoldenError, GoldenResult, check_outputs, record_outputs
from compiler.golden.folder import conform_inputs as conform_inputs
from compiler.golden.folder import load_arrays as load_arrays
from compiler.golden.folder import read_manifest as read_manifest
from compiler.golden.folder import save_arrays as save_arrays
from compiler.golden.goldenset import CALIB as CALIB
from compiler.golden.goldenset import MODEL as MODEL
from compiler.golden.goldenset import GoldenOptions, check_set, record_set
from compiler.golden.goldenset import file_sha256 as file_sha256
from compiler.golden.goldenset import stack_calibration as stack_calibration

__all__ = [
    "GoldenError", "GoldenOptions", "GoldenResult", "OutputReport", "Tolerance", "check_outputs",
    "check_set", "compare_output", "golden_targets", "ir_hash", "record_outputs", "record_set",
]
