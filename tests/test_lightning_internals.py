"""Every private part of Lightning the lab touches (callbacks/lightning_internals.py) is still where it was.

An upgrade of Lightning that renames or reshapes one of them fails here, by name, rather than in a run.
"""

import inspect
import re

import lightning
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar, WeightAveraging

from callbacks import lightning_internals
from callbacks.ema import EMA
from tiny import quiet_trainer, tiny_ddpm

PRIVATE_METHODS = {  # class -> {method: its parameters after self}
    ModelCheckpoint: {
        "_should_skip_saving_checkpoint": ["trainer"],
        "_save_last_checkpoint": ["trainer", "monitor_candidates"],
        "_monitor_candidates": ["trainer"],
    },
    TQDMProgressBar: {"_should_update": ["current", "total"]},
}


def test_lightning_is_the_version_the_lab_is_pinned_to():
    assert re.match(r"2\.6\.", lightning.__version__), "pyproject.toml pins lightning>=2.6,<2.7"


@pytest.mark.parametrize(("owner", "method"), [(c, m) for c, ms in PRIVATE_METHODS.items() for m in ms])
def test_the_private_methods_keep_their_names_and_parameters(owner, method):
    assert hasattr(owner, method), f"Lightning's {owner.__name__}.{method} is gone: update lightning_internals.py"
    parameters = list(inspect.signature(getattr(owner, method)).parameters)[1:]
    assert parameters == PRIVATE_METHODS[owner][method], f"{owner.__name__}.{method} now takes {parameters}"


def test_the_private_attributes_exist_where_the_lab_reads_them(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path)
    assert lightning_internals.last_saved_step(checkpoint) == 0  # `_last_global_step_saved`, before any save
    ema = EMA(decay=0.9)
    assert isinstance(ema, WeightAveraging) and lightning_internals.averaged_model(ema) is None  # before setup
    ema.setup(quiet_trainer(callbacks=[ema]), tiny_ddpm(), "fit")
    assert lightning_internals.averaged_model(ema).module is not None  # `_average_model`, built in setup("fit")


def test_the_bar_redraws_every_refresh_rate_steps_and_at_the_end():
    bar = TQDMProgressBar(refresh_rate=5)
    assert [lightning_internals.bar_should_update(bar, step, 12) for step in (1, 5, 10, 11, 12)] == [
        False, True, True, False, True]  # fmt: skip
