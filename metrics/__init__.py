"""Metrics of what a model makes, built on torchmetrics, and how the samples they score are drawn."""

from metrics.sample_quality import SampleQuality, draw_samples

__all__ = ["SampleQuality", "draw_samples"]
