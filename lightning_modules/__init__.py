"""LightningModules: each is a system (a network plus how it trains, validates and samples)."""

from lightning_modules.ddpm import DDPM
from lightning_modules.gpt2_mini import GPT2Mini
from lightning_modules.mnist_classifier import MNISTClassifier

__all__ = ["DDPM", "GPT2Mini", "MNISTClassifier"]
