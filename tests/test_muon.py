"""`optimizer: muon`: who owns which parameter, exact state round trips, errors, and a better loss at equal steps."""

import math
from types import SimpleNamespace

import pytest
import torch

from errors import UserInputError
from lightning_modules import GPT2Mini
from lightning_modules.optimizers import MuonWithAdamW
from tiny import CORPUS_LINE


def _model(learning_rate: float = 1e-2, **settings) -> GPT2Mini:
    torch.manual_seed(0)
    model = GPT2Mini(vocab_size=len(set(CORPUS_LINE)), n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.0,
                     learning_rate=learning_rate, warmup_steps=2, **settings)  # fmt: skip
    model.trainer = SimpleNamespace(estimated_stepping_batches=40)  # what the schedule reads
    return model


def _optimization(model: GPT2Mini) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimization = model.configure_optimizers()
    return optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]


def _batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    chars = sorted(set(CORPUS_LINE))
    data = torch.tensor([chars.index(c) for c in CORPUS_LINE * 20])
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(steps):
        starts = torch.randint(len(data) - 17, (8,), generator=generator)
        windows = torch.stack([data[s : s + 17] for s in starts])
        batches.append((windows[:, :-1].contiguous(), windows[:, 1:].contiguous()))
    return batches


def _train(model: GPT2Mini, optimizer, schedule, batches) -> float:
    for idx, targets in batches:
        loss = model.loss(idx, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return loss.item()


@pytest.mark.parametrize("tie_weights", [True, False])
def test_muon_owns_the_block_matrices_and_adamw_everything_else_each_parameter_once(tie_weights):
    model = _model(optimizer="muon", tie_weights=tie_weights)
    optimizer, _ = _optimization(model)
    assert isinstance(optimizer, MuonWithAdamW)
    names = {id(p): name for name, p in model.named_parameters()}
    owned = {group["name"]: [names[id(p)] for p in group["params"]] for group in optimizer.param_groups}
    muon = [f"gpt.blocks.{i}.{part}.weight" for i in range(2) for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                                          "mlp.c_proj")]  # fmt: skip
    assert sorted(owned["muon"]) == sorted(muon)
    embeddings = {"gpt.tok_emb.weight", "gpt.pos_emb.weight"} | (set() if tie_weights else {"gpt.lm_head.weight"})
    assert set(owned["decay"]) == embeddings
    assert all(model.get_parameter(name).dim() == 1 for name in owned["no_decay"])
    every = owned["muon"] + owned["decay"] + owned["no_decay"]
    assert sorted(every) == sorted(names.values())  # every parameter, exactly once (a tied head is the embedding)
    assert optimizer.param_groups[0] is optimizer.muon.param_groups[0]  # the schedule scales the inner groups


def test_adamw_keeps_its_groups_in_the_order_old_checkpoints_saved_them():
    model = _model()
    optimizer, _ = _optimization(model)
    assert type(optimizer) is torch.optim.AdamW
    params = list(model.parameters())
    assert optimizer.param_groups[0]["params"] == [p for p in params if p.dim() >= 2]
    assert optimizer.param_groups[1]["params"] == [p for p in params if p.dim() < 2]


def test_the_schedule_scales_each_optimizers_own_peak_rate():
    model = _model(optimizer="muon", muon_lr=0.05)
    optimizer, schedule = _optimization(model)
    _train(model, optimizer, schedule, _batches(2))  # the end of the 2-step warm-up: the peak rates
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert rates["muon"] == pytest.approx(0.05) and rates["decay"] == pytest.approx(1e-2)


def test_a_restored_optimizer_continues_exactly():
    batches = _batches(12)
    model = _model(optimizer="muon")
    optimizer, schedule = _optimization(model)
    _train(model, optimizer, schedule, batches[:6])
    saved = (
        {k: v.clone() for k, v in model.state_dict().items()},
        torch.load(_roundtrip(optimizer.state_dict()), weights_only=True),  # plain data: loads with weights_only
        schedule.state_dict(),
    )
    _train(model, optimizer, schedule, batches[6:])

    restored = _model(optimizer="muon")
    restored.load_state_dict(saved[0])
    optimizer2, schedule2 = _optimization(restored)
    optimizer2.load_state_dict(saved[1])
    schedule2.load_state_dict(saved[2])
    _train(restored, optimizer2, schedule2, batches[6:])
    for name, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], value), name  # bitwise
    assert optimizer2.param_groups[0] is optimizer2.muon.param_groups[0]  # still what the schedule scales


def _roundtrip(state: dict):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_muon_learns_faster_than_adamw_at_equal_steps():
    # AdamW at configs/gpt2_mini_shakespeare.yaml's rate (1e-3), Muon at its default (0.02) for the matrices. On
    # this toy corpus a 10x higher AdamW rate learns faster still: docs/gpt2_to_modern_llms.md compares them
    # on tiny Shakespeare, where it matters.
    batches = _batches(40)
    losses = {}
    for optimizer_name in ("adamw", "muon"):
        model = _model(learning_rate=1e-3, optimizer=optimizer_name)
        losses[optimizer_name] = _train(model, *_optimization(model), batches)
    uniform = math.log(len(set(CORPUS_LINE)))
    assert losses["muon"] < losses["adamw"] < uniform


@pytest.mark.parametrize(("settings", "message"), [
    ({"muon_lr": 0.0}, "muon_lr must be positive, got 0.0."),
    ({"muon_momentum": 1.0}, "muon_momentum must be in [0, 1), got 1.0."),
])  # fmt: skip
def test_bad_muon_settings_fail_when_the_model_is_built(settings, message):
    with pytest.raises(UserInputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        _model(optimizer="muon", **settings)
