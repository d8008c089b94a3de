"""Metrics of what a model makes, built on torchmetrics."""

from metrics.sample_quality import SampleQuality

__all__ = ["SampleQuality"]
