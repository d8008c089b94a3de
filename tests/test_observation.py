"""Observation: what the observers log is what the models compute, and a run without them logs none of it."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from callbacks import DiffusionObserver, TransformerObserver, UpdateRatioLogger
from callbacks.tags import (
    ATTENTION,
    ATTENTION_ENTROPY,
    IN_CONTEXT_LOSS_BY_POSITION,
    IN_CONTEXT_SCORE,
    INDUCTION_SCORE,
    LOGIT_LENS,
    OBSERVED,
    RESIDUAL_RMS,
    TRAJECTORY,
    UPDATE_RATIO,
    VAL_LOSS_BY_T,
)
from datamodules import CharDataModule
from experiments.run_log import RunLog
from lightning_modules.transformer import GPT, merge_heads, split_heads
from tiny import quiet_trainer, recording_trainer, tiny_ddpm, tiny_gpt, tiny_gpt_with_gradients, tiny_network


def network(**switches) -> GPT:
    return tiny_network(vocab_size=12, n_layer=3, **switches)


@pytest.fixture
def idx() -> torch.Tensor:
    return torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(1))


# ---- the transformer's trace --------------------------------------------------------------------------


def test_traced_attention_is_causal_and_normalised_and_changes_no_output(idx):
    gpt = network()
    trace = gpt.trace(idx, attention=True)
    assert len(trace.attention) == 3
    for weights in trace.attention:
        assert weights.shape == (2, 2, 16, 16)
        assert torch.all(weights.triu(diagonal=1) == 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 16))
    torch.testing.assert_close(trace.logits, gpt(idx), atol=1e-5, rtol=1e-5)  # the fused path's logits


def test_attention_output_rebuilt_from_the_traced_weights_equals_the_models(idx):
    gpt = network()
    weights = gpt.trace(idx, attention=True).attention[0]
    attn, ln1 = gpt.blocks[0].attn, gpt.blocks[0].ln1
    x = ln1(gpt.tok_emb(idx) + gpt.pos_emb(torch.arange(16)))  # what block 0's attention reads
    v = split_heads(attn.c_attn(x).split(16, dim=2)[2], n_head=2)
    rebuilt = attn.c_proj(merge_heads(weights @ v))
    torch.testing.assert_close(rebuilt, attn(x), atol=1e-5, rtol=1e-5)  # attn(x) takes the fused (sdpa) path


def _observed(gpt: GPT, idx: torch.Tensor, windows: int | None = None) -> dict[str, float]:
    """The observer's measurements on one batch, for a model whose network is `gpt`."""
    observer = TransformerObserver(windows=windows)
    model = SimpleNamespace(gpt=gpt, hparams=SimpleNamespace(block_size=16, n_layer=3, vocab_size=gpt.config.vocab_size))
    observer.setup(SimpleNamespace(datamodule=SimpleNamespace(val_data=idx[0])), model, "fit")
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True)
    observer.on_validation_batch_end(trainer, model, None, (idx, idx.roll(-1, dims=1)), 0)
    return observer.measurements()


def test_residual_rms_shows_each_switch_on_the_same_weights(idx):
    def profile(**switches) -> list[float]:
        gpt = network()
        for block in gpt.blocks:
            for name, value in switches.items():
                setattr(block, name, value)
        return [_observed(gpt, idx)[f"{RESIDUAL_RMS}{i}"] for i in range(3)]

    pre, post, no_residual = profile(), profile(ln_style="post"), profile(disable_residual=True)
    assert post == pytest.approx([1.0] * 3, abs=1e-3)  # Post-LN ends every block with a fresh LayerNorm
    assert max(pre) < 0.5  # Pre-LN's stream starts at the embeddings' scale (std 0.02) and only adds to it
    assert all(abs(a - b) > 1e-3 for a, b in zip(pre, post))
    assert all(abs(a - b) > 1e-3 for a, b in zip(pre, no_residual))


def test_the_last_blocks_logit_lens_is_the_models_loss(idx):
    gpt = network()
    targets = idx.roll(-1, dims=1)
    observed = _observed(gpt, idx)
    loss = torch.nn.functional.cross_entropy(gpt(idx).flatten(0, 1), targets.flatten())
    assert observed[f"{LOGIT_LENS}2"] == pytest.approx(loss.item(), abs=1e-5)


def test_the_observer_reads_only_its_first_windows(idx):
    gpt = network()
    assert _observed(gpt, idx, windows=1) == _observed(gpt, idx[:1])
    assert _observed(gpt, idx, windows=1) != _observed(gpt, idx)


def test_update_ratio_is_the_step_over_the_weights_per_part():
    model = tiny_gpt_with_gradients()
    trainer, logged = recording_trainer()
    ratio = UpdateRatioLogger()
    ratio.setup(trainer, model, "fit")
    ratio.on_before_optimizer_step(trainer, model, None)
    block0 = [p for name, p in model.named_parameters() if name.startswith("gpt.blocks.0.")]
    grad, weight = (torch.cat([t.flatten() for t in tensors]) for tensors in ([p.grad for p in block0], block0))
    expected = (0.1 * grad.norm() / weight.norm()).item()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    trainer.global_step = 1
    ratio.on_train_batch_end(trainer, model)
    assert logged[f"{UPDATE_RATIO}blocks.0"] == pytest.approx(expected, rel=1e-4)
    assert set(logged) == {f"{UPDATE_RATIO}{part}" for part in ("tok_emb", "pos_emb", "blocks.0", "blocks.1", "ln_f")}


# ---- the diffusion observer -------------------------------------------------------------------------


def test_bucketed_losses_weighted_by_their_counts_are_the_validation_loss(tmp_path):
    observer = DiffusionObserver(buckets=10, num_images=2, points=3, sample_steps=4)
    images = torch.rand(10, 1, 28, 28) * 2 - 1
    trainer = quiet_trainer(callbacks=[observer], default_root_dir=tmp_path)
    (metrics,) = trainer.validate(tiny_ddpm(), DataLoader(TensorDataset(images), batch_size=4), verbose=False)
    buckets = observer.bucket_losses()
    assert sum(count for _, count in buckets.values()) == 10
    weighted = sum(loss * count for loss, count in buckets.values()) / 10
    assert weighted == pytest.approx(metrics["val_loss"], rel=1e-5)
    assert all(name in {f"{2 * i:03d}-{2 * i + 1:03d}" for i in range(10)} for name in buckets)


def test_the_trajectory_pairs_noisy_images_with_predicted_clean_ones():
    observer = DiffusionObserver(num_images=2, points=3, sample_steps=4)
    model = tiny_ddpm()
    observer.setup(None, model, "fit")
    grid = observer.trajectory(model)
    assert grid.shape == (3, 2 + 4 * 30, 2 + 3 * 30)  # 2 seeds x (x_t, x0) rows, 3 moments, 28 px + 2 padding


# ---- in a run, and switched off -------------------------------------------------------------------------


@pytest.mark.parametrize("observed", [True, False])
def test_a_gpt_run_logs_the_observations_only_when_asked(tmp_path, repetitive_text, observed):
    dm = CharDataModule(data_path=str(repetitive_text), block_size=8, batch_size=4)
    model = tiny_gpt(vocab_size=dm.vocab_size, chars=dm.chars, block_size=8)
    callbacks = [TransformerObserver(probe_length=8, windows=None), UpdateRatioLogger()] if observed else []
    trainer = quiet_trainer(
        max_steps=2, val_check_interval=2, limit_val_batches=2, log_every_n_steps=1, callbacks=callbacks,
        default_root_dir=tmp_path, logger=True,
    )  # fmt: skip
    trainer.fit(model, dm)
    log = RunLog(trainer.log_dir)
    assert "val_loss" in log.tags
    if observed:
        for i in range(2):
            assert {f"{ATTENTION}{i}", f"{RESIDUAL_RMS}{i}", f"{LOGIT_LENS}{i}", f"{UPDATE_RATIO}blocks.{i}"} <= log.tags
            assert {f"{ATTENTION_ENTROPY}{i}/head_{j}" for j in range(2)} <= log.tags
            assert {f"{INDUCTION_SCORE}{i}/head_{j}" for j in range(2)} <= log.tags
        assert {IN_CONTEXT_SCORE, IN_CONTEXT_LOSS_BY_POSITION} <= log.tags
        # Over the same (all) validation batches, the last block's logit lens is the validation loss.
        assert log.last(f"{LOGIT_LENS}1") == pytest.approx(log.last("val_loss"), abs=1e-5)
    else:
        assert not [tag for tag in log.tags if tag.startswith(OBSERVED)]


@pytest.mark.parametrize("observed", [True, False])
def test_a_ddpm_run_logs_the_observations_only_when_asked(tmp_path, observed):
    images = torch.rand(8, 1, 28, 28) * 2 - 1
    loader = DataLoader(TensorDataset(images), batch_size=4)
    callbacks = [DiffusionObserver(buckets=10, num_images=1, points=2, sample_steps=2)] if observed else []
    trainer = quiet_trainer(
        max_steps=2, val_check_interval=2, log_every_n_steps=1, callbacks=callbacks, default_root_dir=tmp_path,
        logger=True,
    )  # fmt: skip
    trainer.fit(tiny_ddpm(), loader, loader)
    tags = RunLog(trainer.log_dir).tags
    assert "val_loss" in tags
    by_t = [tag for tag in tags if tag.startswith(VAL_LOSS_BY_T)]
    if observed:
        assert TRAJECTORY in tags and 1 <= len(by_t) <= 8  # 8 images: at most 8 of the 10 buckets
    else:
        assert not [tag for tag in tags if tag.startswith(OBSERVED)]
