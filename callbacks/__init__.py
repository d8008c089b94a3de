"""Callbacks shared by the lab's models: samples during training, gradient norms, prediction writers."""

from callbacks.grad_norms import GradNormLogger
from callbacks.image_prediction_writer import ImagePredictionWriter
from callbacks.image_samples import ImageSampleCallback
from callbacks.text_prediction_writer import TextPredictionWriter
from callbacks.text_samples import TextSampleCallback

__all__ = [
    "GradNormLogger",
    "ImagePredictionWriter",
    "ImageSampleCallback",
    "TextPredictionWriter",
    "TextSampleCallback",
]
