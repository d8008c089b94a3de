"""experiments.intervene and experiments.induction on tiny checkpoints: what they write, and their errors."""

import json

import pytest
import torch
import torch.nn.functional as F

from experiments import ablation, induction, intervene
from lightning_modules import GPT2Mini
from lightning_modules.mnist_classifier import WEIGHTS
from tiny import REPO

OLD = REPO / "tests" / "old_checkpoints"
TINY_TEXT = str(OLD / "tiny.txt")


@pytest.mark.parametrize(
    "checkpoint",
    [pytest.param("gpt_unstamped.ckpt", marks=pytest.mark.slow), pytest.param("gpt_format1.ckpt", marks=pytest.mark.slow),
     "gpt_format2.ckpt"],
)  # fmt: skip
def test_every_head_and_sublayer_of_an_old_gpt_checkpoint_is_ablated_and_reported(tmp_path, checkpoint):
    out = tmp_path / "out"
    intervene.main([str(OLD / checkpoint), "--data", TINY_TEXT, "--windows", "4", "--out", str(out)])
    result = json.loads((out / "intervene.json").read_text())
    assert result["kind"] == "gpt" and result["windows"] == 4 and result["block_size"] == 8
    assert [(r["layer"], r["head"], r["mode"]) for r in result["heads"]] == [
        (0, 0, "zero"), (0, 0, "mean"), (0, 1, "zero"), (0, 1, "mean")]  # fmt: skip
    assert [(r["layer"], r["part"]) for r in result["sublayers"]] == [(0, "attn"), (0, "mlp")]
    # The baseline is the model's own loss on those windows, computed here without the experiment's code.
    model = GPT2Mini.load_from_checkpoint(OLD / checkpoint, map_location="cpu").eval()
    x, y = intervene.validation_windows(model, TINY_TEXT, 4)
    with torch.no_grad():
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    assert result["baseline"]["val_loss"] == pytest.approx(loss, rel=1e-5)
    assert len({r["val_loss"] for r in result["heads"]}) > 1  # the interventions change what they touch
    assert "| 0 | 1 |" in (out / "intervene.md").read_text()
    assert (out / "intervene.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        ([str(OLD / "gpt_format2.ckpt"), "--data", str(OLD)], "is a GPT2Mini (text) checkpoint, so --data must be"),
        ([str(OLD / "ddpm_format2_cosine.ckpt"), "--data", TINY_TEXT], "is a DDPM checkpoint, so --data must be"),
        ([str(OLD / "missing.ckpt")], "does not exist"),
        ([str(WEIGHTS)], "is a MNISTClassifier checkpoint; interventions take a GPT2Mini or a DDPM one."),
        ([str(OLD / "gpt_format2.ckpt"), "--data", str(REPO / "README.md")], "is not the text this checkpoint was"),
        ([str(OLD / "gpt_format2.ckpt"), "--data", TINY_TEXT, "--layers", "1"], "Layer 1 does not exist: the model has 1 (0 to 0)."),
        ([str(OLD / "gpt_format2.ckpt"), "--data", TINY_TEXT, "--heads", "0", "2"], "Head 2 does not exist: each layer has 2 (0 to 1)."),
    ],
)
def test_a_wrong_checkpoint_or_data_gets_one_line(tmp_path, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        intervene.main([*argv, "--out", str(tmp_path / "out")])
    assert str(exit_info.value).startswith("error: ") and message in str(exit_info.value)
    assert "\n" not in str(exit_info.value)


def test_the_induction_analysis_says_to_run_the_preset_first(tmp_path):
    with pytest.raises(SystemExit, match="holds no ablation.json: run `python -m experiments.ablation --preset"):
        induction.main([str(tmp_path)])


def test_the_phase_change_is_the_largest_rise_of_the_induction_score():
    curve = {"step": [0, 50, 100, 150], "induction": [0.05, 0.1, 0.6, 0.65], "in_context": [0.0, -0.1, -0.5, -0.5]}
    assert induction.phase_change(curve, 0.05) == {"from_step": 50, "to_step": 100, "induction_rise": pytest.approx(0.5),
                                                   "in_context_change": pytest.approx(-0.4)}  # fmt: skip
    assert induction.phase_change(curve, uniform=0.4) is None  # never twice what even attention scores: none formed
    assert induction.phase_change({**curve, "induction": [float("nan")] * 4}, 0.05) is None


@pytest.mark.slow
def test_the_induction_preset_trains_and_the_analysis_ablates_the_top_heads(tmp_path, repetitive_text):
    out = tmp_path / "induction"
    ablation.main(["--preset", "induction", "--steps", "4", "--seeds", "0", "--data", str(repetitive_text),
                   "--out", str(out), "--variants", "attn_only_1l", "attn_only_2l", "--trainer.val_check_interval", "2",
                   "--model.n_head", "2", "--model.n_embd", "16", "--data.block_size", "16", "--data.batch_size", "4",
                   "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])  # fmt: skip
    induction.main([str(out), "--windows", "4", "--top", "1"])
    result = json.loads((out / "induction.json").read_text())
    one, two = result["variants"]["attn_only_1l"][0], result["variants"]["attn_only_2l"][0]
    assert one["curve"]["step"] == two["curve"]["step"] == [2, 4]
    assert len(two["induction_scores"]) == 2 and len(two["induction_scores"][0]) == 2
    best = max(range(4), key=lambda i: two["induction_scores"][i // 2][i % 2])
    assert two["top_heads"] == [[best // 2, best % 2]] and two["others_sets"] == 3
    assert two["ablate_top"]["in_context_score"] != two["intact"]["in_context_score"]
    assert (out / "induction.png").stat().st_size > 10_000
    uniform = two["uniform_induction_score"]  # 4 steps form no induction head: no phase change is named
    assert max(two["curve"]["induction"]) < 2 * uniform and two["phase_change"] is None
    assert "| attn_only_2l | 0 | n/a |" in (out / "induction.md").read_text()


def test_the_repeated_strings_corpus_says_each_random_string_four_times(tmp_path):
    path = tmp_path / "repeats.txt"
    induction.main(["--write_corpus", str(path)])
    lines = path.read_text().splitlines()
    assert len(path.read_text()) >= 1_000_000 and len(set(lines)) > 0.99 * len(lines)
    for line in lines[:500]:
        quarter = len(line) // 4
        assert line == line[:quarter] * 4 and 4 <= quarter <= 16 and line.isalpha() and line.islower()
