"""Callbacks shared by the lab's models: samples and their quality, gradient norms, prediction writers, resume state,
divergence."""

from callbacks.checkpoint_extras import CheckpointExtras
from callbacks.diffusion_observer import DiffusionObserver
from callbacks.divergence_guard import DivergenceGuard
from callbacks.ema import EMA
from callbacks.final_validation import FinalValidation
from callbacks.grad_norms import GradNormLogger
from callbacks.hparams_tab import HParamsTab
from callbacks.image_prediction_writer import ImagePredictionWriter
from callbacks.image_samples import ImageSampleCallback
from callbacks.last_checkpoint import LastCheckpoint
from callbacks.progress import StepProgressBar
from callbacks.sample_quality import SampleQualityCallback
from callbacks.text_prediction_writer import TextPredictionWriter
from callbacks.text_samples import TextSampleCallback
from callbacks.transformer_observer import TransformerObserver
from callbacks.update_ratio import UpdateRatioLogger
from callbacks.validation_step import ValidationStep

__all__ = [
    "CheckpointExtras",
    "DiffusionObserver",
    "DivergenceGuard",
    "EMA",
    "FinalValidation",
    "GradNormLogger",
    "HParamsTab",
    "ImagePredictionWriter",
    "ImageSampleCallback",
    "LastCheckpoint",
    "SampleQualityCallback",
    "StepProgressBar",
    "TextPredictionWriter",
    "TextSampleCallback",
    "TransformerObserver",
    "UpdateRatioLogger",
    "ValidationStep",
]
