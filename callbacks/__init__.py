"""Callbacks shared by the lab's models: samples, gradient norms, prediction writers, resume state, divergence."""

from callbacks.checkpoint_extras import CheckpointExtras
from callbacks.divergence_guard import DivergenceGuard
from callbacks.ema import EMA
from callbacks.grad_norms import GradNormLogger
from callbacks.image_prediction_writer import ImagePredictionWriter
from callbacks.image_samples import ImageSampleCallback
from callbacks.last_checkpoint import LastCheckpoint
from callbacks.progress import StepProgressBar
from callbacks.text_prediction_writer import TextPredictionWriter
from callbacks.text_samples import TextSampleCallback

__all__ = [
    "CheckpointExtras",
    "DivergenceGuard",
    "EMA",
    "GradNormLogger",
    "ImagePredictionWriter",
    "ImageSampleCallback",
    "LastCheckpoint",
    "StepProgressBar",
    "TextPredictionWriter",
    "TextSampleCallback",
]
