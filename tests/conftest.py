"""Shared fixtures: tiny synthetic data written into temporary folders (tests never need real data)."""

from pathlib import Path

import pytest


@pytest.fixture
def repetitive_text(tmp_path: Path) -> Path:
    """A short, highly repetitive text: a small model can learn it in a few dozen steps."""
    path = tmp_path / "tiny.txt"
    path.write_text("hello world, the lab says hi.\n" * 120, encoding="utf-8")
    return path
