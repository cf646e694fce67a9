"""Rate-distortion evaluation: our codec against the classical ones on the same images.

Modules, in the order data flows: ``images`` (inputs), ``classical`` and ``learned`` (the codecs),
``rd`` (sweep and measurements), ``bdrate`` (Bjøntegaard delta), ``run`` (one evaluation and its
JSON), ``plot`` and ``report`` (the PNG, the tables, docs/results.md).
"""

from s2c_pipeline.evaluate.bdrate import BDRate, bd_rate
from s2c_pipeline.evaluate.classical import CLASSICAL_NAMES, ClassicalCodec, classical_codecs
from s2c_pipeline.evaluate.images import (
    EVAL_PHOTOS,
    PHOTO_SETS,
    EvalInputError,
    ImageSet,
    load_image_set,
    load_photo_set,
)
from s2c_pipeline.evaluate.learned import LearnedContender
from s2c_pipeline.evaluate.rd import CurvePoint, EvalImage, RDPoint, mean_curve, sweep
from s2c_pipeline.evaluate.run import EvalResult, run_evaluation

__all__ = [
    "CLASSICAL_NAMES",
    "EVAL_PHOTOS",
    "PHOTO_SETS",
    "BDRate",
    "ClassicalCodec",
    "CurvePoint",
    "EvalImage",
    "EvalInputError",
    "EvalResult",
    "ImageSet",
    "LearnedContender",
    "RDPoint",
    "bd_rate",
    "classical_codecs",
    "load_image_set",
    "load_photo_set",
    "mean_curve",
    "run_evaluation",
    "sweep",
]
