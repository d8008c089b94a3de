"""A NaN loss stops training at once, says where and why, and leaves the last good checkpoint in place."""

import pytest
import torch

import train
from tiny import ddpm_args, gpt_args

pytestmark = pytest.mark.slow  # runs through train.py's command line


@pytest.mark.parametrize("model", ["gpt2_mini", "ddpm"])
def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, tiny_mnist, short_text, model):
    make, data = (gpt_args, short_text) if model == "gpt2_mini" else (ddpm_args, tiny_mnist)
    args = make(tmp_path, data, "--trainer.max_steps", "20", "--trainer.callbacks+=helper_callbacks.PoisonAtStep", "--trainer.callbacks.step", "13")
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *args])
    message = exit_info.value.code
    assert message.startswith("error: Training diverged at step 13: the loss is nan.")
    assert "Likely cause: a learning rate too high" in message and "resume from it with --ckpt_path" in message
    checkpoints = sorted((tmp_path / "lightning_logs/version_0/checkpoints").glob("*.ckpt"))
    assert checkpoints and all(int(torch.load(c, weights_only=True)["global_step"]) <= 10 for c in checkpoints)
    last = torch.load(tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == 10
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_the_message_names_the_risky_settings_of_the_run(tmp_path, short_text):
    args = gpt_args(
        tmp_path, short_text, "--trainer.max_steps", "5", "--trainer.gradient_clip_val", "null", "--model.ln_style", "post",
        "--model.learning_rate", "0.5", "--trainer.callbacks+=helper_callbacks.PoisonAtStep", "--trainer.callbacks.step", "2",
    )  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", *args])
    message = exit_info.value.code
    assert "at step 2" in message
    assert "a learning rate too high (0.5; try --model.learning_rate 0.05)" in message
    assert "no gradient clipping (try --trainer.gradient_clip_val 1.0)" in message
    assert "ln_style post" in message
