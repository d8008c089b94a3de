"""EMA of DDPM's weights: it differs from the raw weights, checkpoints and sampling use it, resume keeps it.

Before averaging starts (`update_starting_at_step`), the average is the current weights, so a short run's
validation, grids and checkpoints show the trained model; predict from a checkpoint warns about nothing.
"""

import math
import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint
from torchvision.io import read_image
from torchvision.utils import make_grid, save_image

from callbacks import EMA, ImageSampleCallback
from callbacks.lightning_internals import averaged_model
from datamodules import MNISTDataModule
from lightning_modules import DDPM
from tiny import quiet_trainer, tiny_ddpm


def ddpm(**settings) -> DDPM:
    """A tiny DDPM that learns fast enough for a few steps to move its weights well away from the start."""
    return tiny_ddpm(learning_rate=1e-3, warmup_steps=0, **settings)


class EMAProbe(pl.Callback):
    """Records the EMA weights as they stand when training (re)starts, and after each step whether they are
    the current weights."""

    def __init__(self, ema: EMAWeightAveraging) -> None:
        self.ema = ema
        self.follows: dict[int, bool] = {}

    def average(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in averaged_model(self.ema).module.state_dict().items()}

    def on_train_start(self, trainer, pl_module):
        self.at_start = self.average()
        self.current_at_start = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, *args):
        current = pl_module.state_dict()
        self.follows[trainer.global_step] = all(torch.equal(v, current[k]) for k, v in self.average().items())


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def data(data_dir) -> MNISTDataModule:
    return MNISTDataModule(str(data_dir), download=False, batch_size=8)


def fit(data_dir, root, max_steps, ckpt_path=None, ema=None):
    ema = ema or EMA(decay=0.9)
    probe = EMAProbe(ema)
    # Saved during training, as last.ckpt is: at the end of fit the EMA weights are copied into the model.
    checkpoint = ModelCheckpoint(root, filename=f"step{max_steps}", every_n_train_steps=max_steps)
    trainer = quiet_trainer(max_steps=max_steps, default_root_dir=root, callbacks=[ema, probe, checkpoint],
                            limit_val_batches=0, enable_checkpointing=True)  # fmt: skip
    model = ddpm()
    trainer.fit(model, data(data_dir), ckpt_path=ckpt_path)
    path = root / f"step{max_steps}.ckpt"
    return torch.load(path, weights_only=True), path, probe


def test_ema_is_saved_as_the_weights_used_for_sampling_and_survives_resume(tmp_path, tiny_mnist):
    ckpt, path, _ = fit(tiny_mnist, tmp_path, 6)
    ema, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert any(not torch.equal(ema[k], raw[k]) for k in ema), "EMA weights should differ from the raw ones"

    loaded = DDPM.load_from_checkpoint(path)
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, ema[name])
    with_raw = ddpm()
    with_raw.load_state_dict(raw)
    samples = loaded.sample(4, steps=5, seed=0)
    assert not torch.allclose(samples, with_raw.sample(4, steps=5, seed=0))

    resumed, _, probe = fit(tiny_mnist, tmp_path, 9, ckpt_path=path)
    for name, value in ema.items():
        torch.testing.assert_close(probe.at_start[name], value)  # the EMA continues, it does not restart
    assert resumed["global_step"] == 9
    assert any(not torch.equal(resumed["state_dict"][k], ema[k]) for k in ema)


def val_loss(model: DDPM, data_dir) -> float:
    """The validation loss of `model`'s own weights, with no callbacks in the way."""
    trainer = quiet_trainer(limit_val_batches=1)
    return trainer.validate(model, data(data_dir), verbose=False)[0]["val_loss"]


def test_a_run_shorter_than_the_ema_start_validates_samples_and_saves_the_current_weights(tmp_path, tiny_mnist):
    steps = 5
    initial, model = ddpm(), ddpm()
    sampler = ImageSampleCallback(num_samples=4, every_n_steps=None, sample_steps=5, seed=0)
    ema = EMA(decay=0.995, update_starting_at_step=100)
    best = ModelCheckpoint(tmp_path, monitor="val_loss", filename="best-{step}-{val_loss:.4f}")
    trainer = quiet_trainer(
        max_steps=steps, default_root_dir=tmp_path, callbacks=[sampler, ema, best], limit_val_batches=1,
        val_check_interval=steps, check_val_every_n_epoch=None, num_sanity_val_steps=0, enable_checkpointing=True,
    )  # fmt: skip
    trainer.fit(model, data(tiny_mnist))

    ckpt = torch.load(best.best_model_path, weights_only=True)
    assert ckpt["global_step"] == steps
    assert same(ckpt["state_dict"], ckpt["current_model_state"]), "before the EMA start it must be the weights"
    raw = ddpm()
    raw.load_state_dict(ckpt["current_model_state"])

    # Validation saw the trained weights, not the initial copy Lightning's callback would have swapped in.
    logged, own = float(trainer.callback_metrics["val_loss"]), val_loss(raw, tiny_mnist)
    assert math.isclose(logged, own, rel_tol=1e-5), (logged, own)
    assert abs(val_loss(initial, tiny_mnist) - own) > 0.05, "too few steps to tell trained from initial weights"
    assert f"val_loss={own:.4f}" in best.best_model_path

    # The grid drawn at validation is the trained weights' grid, drawn the way the callback draws it.
    expected = tmp_path / "expected.png"
    save_image(make_grid(raw.sample(4, 5, 0.0, seed=0), nrow=2), expected)
    assert torch.equal(read_image(str(tmp_path / "samples" / f"step_{steps:06d}.png")), read_image(str(expected)))
    # And after training the model samples with them too.
    torch.testing.assert_close(model.sample(4, 5, 0.0, seed=0), raw.sample(4, 5, 0.0, seed=0))


def test_the_average_follows_the_weights_until_the_start_step_then_averages(tmp_path, tiny_mnist):
    # update_starting_at_step counts steps from 0: the first update is after the 3rd step, and it copies.
    ckpt, _, probe = fit(tiny_mnist, tmp_path, 5, ema=EMA(decay=0.9, update_starting_at_step=2))
    assert probe.follows == {1: True, 2: True, 3: True, 4: False, 5: False}
    assert not same(ckpt["state_dict"], ckpt["current_model_state"])


class PredictProbe(pl.Callback):
    """The weights predict runs with, and a few samples drawn with them."""

    def on_predict_start(self, trainer, pl_module):
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}
        self.samples = pl_module.sample(2, steps=5, seed=0)


def predict(ckpt_path, data_dir, ema):
    probe = PredictProbe()
    trainer = quiet_trainer(callbacks=[ema, probe])
    trainer.predict(ddpm(num_samples=1, sample_steps=2), data(data_dir), ckpt_path=ckpt_path)
    return probe


def test_predict_samples_with_the_ema_weights_and_does_not_warn(tmp_path, tiny_mnist):
    ckpt, path, _ = fit(tiny_mnist, tmp_path, 5, ema=EMA(decay=0.9, update_starting_at_step=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = predict(path, tiny_mnist, EMA(decay=0.9))
    alarming = [str(w.message) for w in caught if "WeightAveraging" in str(w.message)]
    assert not alarming, alarming

    assert same(probe.weights, ckpt["state_dict"]) and not same(probe.weights, ckpt["current_model_state"])
    with_ema = ddpm()
    with_ema.load_state_dict(ckpt["state_dict"])
    torch.testing.assert_close(probe.samples, with_ema.sample(2, steps=5, seed=0))

    # The check above can see the warning: Lightning's own callback gives it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict(path, tiny_mnist, EMAWeightAveraging(decay=0.9))
    assert [w for w in caught if "WeightAveraging state cannot be restored" in str(w.message)]


def test_old_checkpoints_written_before_the_ema_start_load_for_predict_and_resume(tmp_path, tiny_mnist):
    old = EMAWeightAveraging(decay=0.9, update_starting_at_step=100)
    ckpt, path, _ = fit(tiny_mnist, tmp_path, 3, ema=old)
    assert not same(ckpt["state_dict"], ckpt["current_model_state"])  # Lightning's: the untrained initial copy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = predict(path, tiny_mnist, EMA(decay=0.9, update_starting_at_step=100))
    alarming = [str(w.message) for w in caught if "WeightAveraging" in str(w.message)]
    assert not alarming, alarming
    assert same(probe.weights, ckpt["current_model_state"])  # the weights the run had reached, not the copy

    resumed, _, probe = fit(tiny_mnist, tmp_path, 5, ckpt_path=path, ema=EMA(decay=0.9, update_starting_at_step=100))
    assert same(probe.current_at_start, ckpt["current_model_state"])
    assert same(probe.at_start, probe.current_at_start), "the average should restart from the reached weights"
    assert resumed["global_step"] == 5
    assert same(resumed["state_dict"], resumed["current_model_state"])
