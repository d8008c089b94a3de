"""Switching a U-Net part off for a band of t changes exactly that part for exactly those samples, and the DDPM
intervention experiment scores and draws every part x band."""

import copy
import json

import pytest
import torch

from errors import UserInputError
from experiments.intervene_ddpm import ddpm_interventions, ddpm_markdown
from lightning_modules.unet import switch_off
from tiny import tiny_ddpm, tiny_unet

X = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
T = torch.tensor([0, 10, 500, 999])


@pytest.mark.parametrize("part", ["time_emb", "skip_0", "skip_2"])
def test_a_band_with_no_timestep_in_it_changes_nothing(part):
    unet = tiny_unet()
    with switch_off(unet, part, (11, 500)):
        assert torch.equal(unet(X, T), tiny_unet()(X, T))


def test_time_emb_off_everywhere_equals_a_unet_whose_time_mlp_outputs_zeros():
    unet = tiny_unet(num_classes=10)
    by_hand = copy.deepcopy(unet)
    by_hand.time_mlp[-1].weight.data.zero_()  # the last Linear now outputs zeros: t_emb is the label's alone
    by_hand.time_mlp[-1].bias.data.zero_()
    labels = torch.tensor([1, 2, 3, 10])
    with switch_off(unet, "time_emb", (0, 1000)):
        assert torch.allclose(unet(X, T, labels), by_hand(X, T, labels), atol=1e-6)
    assert not torch.allclose(unet(X, T, labels), by_hand(X, T, labels), atol=1e-3)  # it was not zero anyway


@pytest.mark.parametrize("part", ["time_emb", "skip_0", "skip_1", "skip_2"])
def test_only_the_samples_whose_t_is_in_the_band_change(part):
    unet = tiny_unet()
    plain = unet(X, T)
    with switch_off(unet, part, (10, 600)):  # t = 10 and 500 in, 0 and 999 out
        off = unet(X, T)
    assert torch.equal(off[[0, 3]], plain[[0, 3]])
    assert (off[[1, 2]] - plain[[1, 2]]).abs().flatten(1).amax(dim=1).min() > 1e-4


def test_hooks_are_gone_after_the_context_even_after_an_error():
    unet = tiny_unet()
    plain = unet(X, T)
    with switch_off(unet, "skip_1", (0, 1000)):
        assert not torch.equal(unet(X, T), plain)
    assert torch.equal(unet(X, T), plain)
    with pytest.raises(RuntimeError, match="inside"), switch_off(unet, "time_emb", (0, 1000)):
        raise RuntimeError("inside")
    assert torch.equal(unet(X, T), plain)
    assert not unet._forward_pre_hooks and not unet.time_mlp._forward_hooks


@pytest.mark.parametrize(
    ("settings", "part", "named"),
    [
        ({}, "skip_3", "time_emb, skip_0, skip_1, skip_2"),
        ({"disable_time_emb": True, "channel_mults": (1, 2)}, "time_emb", "skip_0, skip_1"),
    ],
)
def test_a_part_that_does_not_exist_names_the_parts_that_do(settings, part, named):
    with pytest.raises(UserInputError, match=f"no part '{part}': choose one of {named}"):
        with switch_off(tiny_unet(**settings), part, (0, 10)):
            pass


def test_an_empty_band_is_a_user_error():
    with pytest.raises(UserInputError, match="0 <= t_lo < t_hi"):
        with switch_off(tiny_unet(), "skip_0", (10, 10)):
            pass


class FixedScore:
    """A stand-in judge: fixed numbers, and a record of what it was shown."""

    def __init__(self) -> None:
        self.shown: list[torch.Tensor] = []

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        self.shown.append(images)
        return {"fid": 10.0 + len(self.shown), "confidence": 0.5, "class_balance": 1.0, "num_samples": len(images)}


def test_interventions_score_and_draw_every_part_and_band(tmp_path, capsys):
    judge = FixedScore()
    result = ddpm_interventions(tiny_ddpm(), judge, tmp_path, num_samples=3, steps=4, bands=2, seed=1)

    assert result["kind"] == "ddpm" and result["num_samples"] == 3 and result["steps"] == 4
    assert result["baseline"]["fid"] == 11.0 and result["baseline"]["grid"] == "ddpm_baseline.png"
    assert [(e["part"], e["band"]) for e in result["interventions"]] == [
        (part, band) for part in ("time_emb", "skip_0", "skip_1") for band in ([0, 10], [10, 20])
    ]
    for entry in [result["baseline"], *result["interventions"]]:
        assert {"fid", "confidence", "grid"} <= entry.keys()
        assert (tmp_path / entry["grid"]).is_file()
    assert len(list(tmp_path.glob("*.png"))) == 7
    assert not any(torch.equal(judge.shown[0], shown) for shown in judge.shown[1:])  # each intervention acts
    assert result["seconds"] >= 0
    json.dumps(result)
    assert len(capsys.readouterr().err.splitlines()) == 7  # a progress line each

    text = ddpm_markdown(result)
    assert "| time_emb | 12.00 / 0.500 | 13.00 / 0.500 |" in text
    assert "- skip_1 hurt most at t 10-20: Frechet distance 17.00 against 11.00." in text


def test_bad_band_counts_are_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="bands must be between 1 and the model's timesteps \\(20\\)"):
        ddpm_interventions(tiny_ddpm(), FixedScore(), tmp_path, num_samples=3, steps=4, bands=21)
