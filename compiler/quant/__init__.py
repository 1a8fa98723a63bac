"""INT8 post-training quantisation: calibration data, range observers, calibration."""

from compiler.quant.calib_data import CalibrationData, calibration_data
from compiler.quant.calibrate import METHODS, Calibrator, calibrate
from compiler.quant.observers import (
    SCHEMES,
    EntropyObserver,
    Histogram,
    MinMaxObserver,
    MseObserver,
    Observer,
    PercentileObserver,
    make_observer,
    qrange,
    quant_params,
    to_quant_params,
)

__all__ = [
    "METHODS",
    "SCHEMES",
    "CalibrationData",
    "Calibrator",
    "EntropyObserver",
    "Histogram",
    "MinMaxObserver",
    "MseObserver",
    "Observer",
    "PercentileObserver",
    "calibrate",
    "calibration_data",
    "make_observer",
    "qrange",
    "quant_params",
    "to_quant_params",
]
