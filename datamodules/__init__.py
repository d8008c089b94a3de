"""LightningDataModules: where each model's data comes from."""

from datamodules.char_data import CharDataModule
from datamodules.char_tokenizer import CharTokenizer
from datamodules.mnist import MNISTDataModule

__all__ = ["CharDataModule", "CharTokenizer", "MNISTDataModule"]
