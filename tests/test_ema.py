"""EMA of DDPM's weights: it differs from the raw weights, checkpoints and sampling use it, resume keeps it."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint

from datamodules import MNISTDataModule
from lightning_modules import DDPM

TINY = {"base_channels": 8, "channel_mults": (1, 2), "timesteps": 20, "learning_rate": 1e-3, "warmup_steps": 0}


class EMAProbe(pl.Callback):
    """Records the EMA weights as they stand when training (re)starts."""

    def __init__(self, ema: EMAWeightAveraging) -> None:
        self.ema = ema

    def on_train_start(self, trainer, pl_module):
        self.at_start = {k: v.clone() for k, v in self.ema._average_model.module.state_dict().items()}


def fit(data_dir, root, max_steps, ckpt_path=None):
    torch.manual_seed(0)
    ema = EMAWeightAveraging(decay=0.9)
    probe = EMAProbe(ema)
    # Saved during training, as last.ckpt is: at the end of fit the EMA weights are copied into the model.
    checkpoint = ModelCheckpoint(root, filename=f"step{max_steps}", every_n_train_steps=max_steps)
    trainer = pl.Trainer(
        max_steps=max_steps, default_root_dir=root, callbacks=[ema, probe, checkpoint], logger=False,
        limit_val_batches=0, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    model = DDPM(**TINY)
    trainer.fit(model, MNISTDataModule(str(data_dir), download=False, batch_size=8), ckpt_path=ckpt_path)
    path = root / f"step{max_steps}.ckpt"
    return torch.load(path, weights_only=True), path, probe


def test_ema_is_saved_as_the_weights_used_for_sampling_and_survives_resume(tmp_path, tiny_mnist):
    ckpt, path, _ = fit(tiny_mnist, tmp_path, 6)
    ema, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert any(not torch.equal(ema[k], raw[k]) for k in ema), "EMA weights should differ from the raw ones"

    loaded = DDPM.load_from_checkpoint(path)
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, ema[name])
    with_raw = DDPM(**TINY)
    with_raw.load_state_dict(raw)
    samples = loaded.sample(4, steps=5, seed=0)
    assert not torch.allclose(samples, with_raw.sample(4, steps=5, seed=0))

    resumed, _, probe = fit(tiny_mnist, tmp_path, 9, ckpt_path=path)
    for name, value in ema.items():
        torch.testing.assert_close(probe.at_start[name], value)  # the EMA continues, it does not restart
    assert resumed["global_step"] == 9
    assert any(not torch.equal(resumed["state_dict"][k], ema[k]) for k in ema)
