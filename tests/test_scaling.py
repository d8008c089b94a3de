"""The scaling experiment: its fits recover known laws, its FLOP count is what it says, and its grid resumes."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from experiments import scaling
from experiments import scaling_laws as laws
from lightning_modules.transformer import GPT, GPTConfig

SIZES = np.geomspace(5e4, 3e6, 5)
TRUE = laws.Law(E=1.3, A=25.0, alpha=0.3)


def noisy_sizes(law: laws.Law, seeds: int = 3, noise: float = 0.01, seed: int = 1) -> dict[float, list[float]]:
    """Each size's losses over `seeds` seeds: the law times a log-normal noise of `noise` (1%: seeds differ so)."""
    rng = np.random.default_rng(seed)
    return {float(n): list(law(n) * np.exp(rng.normal(0, noise, seeds))) for n in SIZES}


def test_power_law_fit_recovers_a_known_exponent():
    n = np.geomspace(3e5, 2e7, 6)
    fit = laws.fit_power_law(n, 20.89 * n**-0.129)
    assert fit.a == pytest.approx(20.89, rel=1e-6) and fit.b == pytest.approx(0.129, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0)


def test_the_law_with_a_floor_is_recovered_exactly_without_noise_and_within_its_interval_with_noise():
    exact = laws.fit_law(list(SIZES), list(TRUE(SIZES)))
    assert (exact.E, exact.A, exact.alpha) == pytest.approx((1.3, 25.0, 0.3), rel=1e-3)
    fit = laws.law_with_intervals(noisy_sizes(TRUE), resamples=40)
    for name in ("E", "A", "alpha"):
        lo, hi = fit["ci"][name]
        assert lo < getattr(TRUE, name) < hi, name
        assert lo < fit[name] < hi
    assert fit["alpha"] == pytest.approx(0.3, abs=0.05) and fit["E"] == pytest.approx(1.3, abs=0.1)
    assert fit["r2"] > 0.99
    # Without the floor the same points give a much smaller exponent: it is the one the plan's fit reports.
    power = laws.fit_power_law(list(SIZES), list(TRUE(SIZES)))
    assert power.b < 0.5 * TRUE.alpha


def test_a_held_out_size_is_predicted_from_the_others_with_an_interval_that_holds_it():
    sizes = noisy_sizes(TRUE)
    held_out = float(SIZES[-1])
    result = laws.predict_held_out(sizes, held_out, resamples=40)
    lo, hi = result["interval"]
    assert lo < result["predicted"] < hi and lo < TRUE(held_out) < hi
    assert result["measured"] == pytest.approx(np.mean(sizes[held_out]))
    assert result["error"] == pytest.approx(result["measured"] - result["predicted"])
    assert set(result["law"]) == {"E", "A", "alpha"}


def test_a_law_with_a_floor_needs_three_sizes():
    with pytest.raises(ValueError, match="needs three sizes, got 2"):
        laws.fit_law([1e5, 1e5, 1e6], [2.0, 2.1, 1.8])


def test_the_two_variable_law_is_recovered_from_runs_that_vary_size_and_data():
    true = laws.TwoVariableLaw(E=1.2, A=20.0, alpha=0.3, B=50.0, beta=0.35)
    n, d = (grid.ravel() for grid in np.meshgrid(SIZES, np.geomspace(1e5, 1e7, 4)))
    fit = laws.fit_two_variable(list(n), list(d), list(true(n, d)))
    assert (fit.E, fit.A, fit.alpha, fit.B, fit.beta) == pytest.approx((1.2, 20.0, 0.3, 50.0, 0.35), rel=0.02)


def test_the_isoflop_optimum_is_the_parabolas_vertex_or_the_best_size_at_an_edge():
    """The parabola goes through the best size and its neighbours: on points from a parabola, its vertex."""
    n = np.geomspace(1e5, 1e7, 5)
    best, interior = laws.isoflop_optimum(list(n), list(2.0 + 0.1 * (np.log(n) - np.log(1e6)) ** 2))
    assert interior and best == pytest.approx(1e6, rel=1e-6)
    best, interior = laws.isoflop_optimum(list(n), list(2.0 - 0.01 * np.log(n)))  # still falling: no vertex
    assert not interior and best == pytest.approx(1e7)
    # Budgets whose optimum grows as C^0.5 give a = b = 0.5, and every best size spends its budget.
    n = np.geomspace(1e4, 1e8, 9)
    budgets = {c: (list(n), list(2.0 + 0.1 * (np.log(n) - 0.5 * np.log(c / 1e8)) ** 2)) for c in (1e18, 1e19, 1e20)}
    iso = laws.fit_isoflop(budgets)
    assert iso["a"] == pytest.approx(0.5) and iso["b"] == pytest.approx(0.5)
    for row in iso["budgets"]:
        assert 6 * row["best_parameters"] * row["best_tokens"] == pytest.approx(row["flops"])


def test_the_flop_count_is_6ND_plus_what_the_convention_leaves_out():
    """PyTorch's FLOP counter on one training step (the written-out attention, whose matmuls it sees) counts
    exactly 6 FLOPs per weight per token, plus the two terms C = 6ND leaves out: the tied output layer and
    the attention scores. N (non-embedding) also holds the biases and norms, which cost no matmul."""
    n_layer, d, t, batch, vocab = 2, 32, 16, 4, 65
    model = GPT(GPTConfig(n_layer=n_layer, n_head=2, n_embd=d, block_size=t, dropout=0.0, vocab_size=vocab,
                          attn_impl="manual"))  # fmt: skip
    x = torch.randint(0, vocab, (batch, t))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).reshape(-1, vocab), x.reshape(-1)).backward()
    tokens = batch * t
    matrices = sum(p.numel() for name, p in model.blocks.named_parameters() if p.dim() == 2)
    assert matrices == 12 * d * d * n_layer
    output_layer, attention_scores = (
        6 * tokens * d * vocab,
        12 * tokens * t * d * n_layer,
    )
    assert counter.get_total_flops() == 6 * matrices * tokens + output_layer + attention_scores
    n = model.num_parameters(non_embedding=True)
    assert 0 < n - matrices < 0.05 * n
    assert laws.training_flops(n, tokens) == 6 * n * tokens


def test_the_plan_trains_each_budget_on_its_tokens_and_the_full_preset_contains_the_quick_one():
    quick, full = (
        scaling.plan(scaling.PRESETS["quick"]),
        scaling.plan(scaling.PRESETS["full"]),
    )
    assert set(quick) < set(full)
    tokens_per_step = scaling.BLOCK_SIZE * scaling.BATCH_SIZE
    for run in full:
        if run.experiment == "isoflop":
            n = scaling.non_embedding_parameters(run.name)
            assert laws.training_flops(n, run.steps * tokens_per_step) == pytest.approx(run.budget, rel=0.01)
            assert run.steps >= scaling.MIN_STEPS
    assert sum(run.experiment == "sizes" for run in quick) == len(scaling.PRESETS["quick"].sizes) * 2


def fake_train(calls: list, fail_at: int | None = None):
    """Stands in for a training run: records it, and raises as a Ctrl-C would at call number `fail_at`."""

    def train(run, out, data, passthrough):
        if len(calls) + 1 == fail_at:
            raise KeyboardInterrupt
        calls.append(run)
        n = scaling.non_embedding_parameters(run.name)
        tokens = run.steps * scaling.BLOCK_SIZE * scaling.BATCH_SIZE
        loss = float(laws.TwoVariableLaw(1.2, 20.0, 0.3, 50.0, 0.35)(n, tokens)) * (1 + 0.001 * run.seed)
        return {"experiment": run.experiment, "name": run.name, "seed": run.seed, "budget": run.budget,
                "non_embedding_parameters": n, "val_loss": loss, "val_bits_per_char": laws.bits(loss),
                "steps": run.steps, "block_size": scaling.BLOCK_SIZE, "batch_size": scaling.BATCH_SIZE,
                "tokens_seen": tokens, "wall_time_s": 1.0, "train_args": passthrough}  # fmt: skip

    return train


def test_an_interrupted_grid_resumes_without_redoing_finished_runs(tmp_path, monkeypatch, capsys):
    preset = scaling.Preset(("nano", "micro", "tiny", "mini"), (0, 1), 100 * 64 * 32, (1e12, 3e12))
    monkeypatch.setitem(scaling.PRESETS, "quick", preset)
    monkeypatch.setattr(laws, "BOOTSTRAP_RESAMPLES", 20)
    out = tmp_path / "scaling"
    first: list = []
    monkeypatch.setattr(scaling, "train", fake_train(first, fail_at=4))
    with pytest.raises(KeyboardInterrupt):
        scaling.main(["--quick", "--out", str(out)])
    saved = json.loads((out / "scaling_results.json").read_text())
    assert [(r["name"], r["seed"]) for r in saved] == [(run.name, run.seed) for run in first] and len(first) == 3

    second: list = []
    monkeypatch.setattr(scaling, "train", fake_train(second))
    scaling.main(["--quick", "--out", str(out)])
    plan = scaling.plan(preset)
    assert second == plan[3:]
    assert capsys.readouterr().out.count("already finished") == 3
    fit = json.loads((out / "scaling_fit.json").read_text())
    assert set(fit["irreducible"]["ci"]) == {"E", "A", "alpha"}
    assert fit["held_out"]["name"] == "mini" and len(fit["held_out"]["interval"]) == 2
    assert fit["two_variable"]["beta"] == pytest.approx(0.35, rel=0.05)  # the fake runs follow a known law
    assert [b["flops"] for b in fit["isoflop"]["budgets"]] == [1e12, 3e12] and fit["isoflop"]["a"] > 0
    for figure in ("scaling_law.png", "isoflop.png"):
        assert (out / figure).stat().st_size > 10_000
    # Other options for train.py make other runs: none of the saved ones is taken for them.
    results = json.loads((out / "scaling_results.json").read_text())
    assert all(run.matches(r, []) for run, r in zip(plan, results[:3]))
    assert not any(run.matches(r, ["--model.bias=false"]) for run in plan for r in results)


@pytest.mark.slow
def test_the_grid_trains_through_train_py_and_records_each_run(tmp_path, repetitive_text, monkeypatch):
    sizes = {"a": {"n_layer": 1, "n_head": 2, "n_embd": 8}, "b": {"n_layer": 1, "n_head": 2, "n_embd": 16},
             "c": {"n_layer": 2, "n_head": 2, "n_embd": 16}, "d": {"n_layer": 2, "n_head": 2, "n_embd": 24}}  # fmt: skip
    monkeypatch.setattr(scaling, "SIZES", sizes)
    monkeypatch.setitem(
        scaling.PRESETS,
        "quick",
        scaling.Preset(("a", "b", "c", "d"), (0, 1), 4 * 64 * 32, (3e8,)),
    )
    monkeypatch.setattr(scaling, "MIN_STEPS", 2)
    monkeypatch.setattr(laws, "BOOTSTRAP_RESAMPLES", 10)
    out = tmp_path / "scaling"
    scaling.main(["--quick", "--data", str(repetitive_text), "--out", str(out), "--trainer.enable_progress_bar=false",
                  "--trainer.enable_model_summary=false"])  # fmt: skip
    results = json.loads((out / "scaling_results.json").read_text())
    assert [(r["experiment"], r["name"], r["seed"]) for r in results][:8] == [
        ("sizes", name, seed) for seed in (0, 1) for name in "abcd"]  # fmt: skip
    for r in results:
        assert r["non_embedding_parameters"] < r["parameters"] and r["val_loss"] > 0
        assert r["flops"] == 6 * r["non_embedding_parameters"] * r["tokens_seen"]
        assert r["tokens_seen"] == r["steps"] * 64 * 32
    a0, a1 = (r for r in results if r["name"] == "a" and r["experiment"] == "sizes")
    assert a0["val_loss"] != a1["val_loss"]  # the seed reached the run
    assert any(r["experiment"] == "isoflop" for r in results)
