"""Interventions through `GPT.trace`, `disable_mlp`, and the induction and in-context scores."""

import copy

import pytest
import torch

from errors import UserInputError
from lightning_modules.transformer import Intervention
from metrics.induction import (in_context_positions, in_context_score, induction_scores, repeated_random_tokens,
                               uniform_induction_score)  # fmt: skip
from tiny import CHARS, tiny_network


@pytest.fixture
def idx() -> torch.Tensor:
    return torch.randint(0, len(CHARS), (3, 16), generator=torch.Generator().manual_seed(0))


@pytest.fixture
def gpt():
    network = tiny_network()
    with torch.no_grad():  # biases off zero, so that a zeroed input is not the same as a zeroed output
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return network


def test_no_intervention_is_the_plain_forward_pass_and_hooks_leave_with_the_pass(gpt, idx):
    plain = gpt(idx)
    assert torch.equal(gpt.trace(idx).logits, plain)
    changed = gpt.trace(idx, interventions=[Intervention(0, "block"), Intervention(1, "head", 1)]).logits
    assert not torch.allclose(changed, plain)
    assert torch.equal(gpt(idx), plain)
    with pytest.raises(UserInputError):  # a bad one after a good one: the good one's hook is removed too
        gpt.trace(idx, interventions=[Intervention(0, "mlp"), Intervention(5, "mlp")])
    assert torch.equal(gpt(idx), plain)


@pytest.mark.parametrize("layer, head", [(0, 0), (1, 1)])
def test_zero_ablating_a_head_is_zeroing_its_slice_of_the_input_to_c_proj(gpt, idx, layer, head):
    ablated = gpt.trace(idx, interventions=[Intervention(layer, "head", head)]).logits
    by_hand = copy.deepcopy(gpt)
    head_size = gpt.config.n_embd // gpt.config.n_head
    with torch.no_grad():  # c_proj(x) with x's slice zeroed = c_proj with those columns of its weight zeroed
        by_hand.blocks[layer].attn.c_proj.weight[:, head * head_size : (head + 1) * head_size] = 0
    torch.testing.assert_close(ablated, by_hand(idx))
    assert not torch.allclose(ablated, gpt(idx))


def test_mean_ablation_puts_the_mean_in_the_heads_place(gpt, idx):
    reference = gpt.trace(idx)
    mean = reference.heads[1][:, :, 0].mean(dim=(0, 1))  # (head_size,)
    traced = gpt.trace(idx, interventions=[Intervention(1, "head", 0, mean)])
    zeroed = gpt.trace(idx, interventions=[Intervention(1, "head", 0, torch.zeros_like(mean))])
    torch.testing.assert_close(zeroed.logits, gpt.trace(idx, interventions=[Intervention(1, "head", 0)]).logits)
    assert not torch.allclose(traced.logits, zeroed.logits)
    assert torch.equal(traced.heads[1], reference.heads[1])  # the trace keeps what the heads computed


def test_patching_a_run_with_its_own_activations_changes_nothing(gpt, idx):
    clean = gpt.trace(idx)
    own = [Intervention(0, "head", 1, clean.heads[0][:, :, 1]), Intervention(1, "block", value=clean.hidden_states[1]),
           Intervention(0, "block", value=clean.hidden_states[0])]  # fmt: skip
    for edit in own:
        torch.testing.assert_close(gpt.trace(idx, interventions=[edit]).logits, clean.logits, rtol=0, atol=0)


def test_patching_the_last_residual_stream_from_a_clean_run_restores_its_output(gpt, idx):
    clean = gpt.trace(idx)
    corrupted = idx.flip(dims=[1])
    patched = gpt.trace(corrupted, interventions=[Intervention(1, "block", value=clean.hidden_states[1])])
    assert not torch.allclose(gpt(corrupted), clean.logits)
    torch.testing.assert_close(patched.logits, clean.logits)


def test_ablating_a_block_passes_the_residual_stream_through(gpt, idx):
    traced = gpt.trace(idx, interventions=[Intervention(1, "block")])
    assert torch.equal(traced.hidden_states[1], traced.hidden_states[0])
    torch.testing.assert_close(traced.logits, gpt.unembed(gpt.trace(idx).hidden_states[0]))


def test_ablating_a_sublayer_is_switching_it_off_in_that_block(gpt, idx):
    no_attention, no_mlp = copy.deepcopy(gpt), copy.deepcopy(gpt)
    no_attention.blocks[0].disable_attention = True
    no_mlp.blocks[1].mlp = None
    torch.testing.assert_close(gpt.trace(idx, interventions=[Intervention(0, "attn")]).logits, no_attention(idx))
    torch.testing.assert_close(gpt.trace(idx, interventions=[Intervention(1, "mlp")]).logits, no_mlp(idx))


@pytest.mark.parametrize(
    "edit, switches, message",
    [
        (Intervention(2, "mlp"), {}, "Layer 2 does not exist: the model has 2 (0 to 1)."),
        (Intervention(-1, "block"), {}, "Layer -1 does not exist"),
        (Intervention(0, "head", 2), {}, "Head 2 does not exist: each layer has 2 (0 to 1)."),
        (Intervention(0, "head"), {}, "Head None does not exist"),
        (Intervention(0, "mlp"), {"disable_mlp": True}, "has no MLP to intervene on"),
        (Intervention(1, "head", 0), {"disable_attention": True}, "has no attention to intervene on"),
        (Intervention(0, "ffn"), {}, "Intervention part must be one of 'head', 'attn', 'mlp', 'block', got 'ffn'."),
    ],
)
def test_an_intervention_on_a_part_that_does_not_exist_says_so(idx, edit, switches, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_network(**switches).trace(idx, interventions=[edit])


def test_disable_mlp_removes_the_mlps_parameters_and_their_effect(gpt, idx):
    attention_only = tiny_network(disable_mlp=True)
    assert not [name for name in attention_only.state_dict() if ".mlp." in name or ".ln2." in name]
    removed = sum(p.numel() for b in gpt.blocks for p in (*b.mlp.parameters(), *b.ln2.parameters()))
    assert attention_only.num_parameters() == gpt.num_parameters() - removed
    attention_only.load_state_dict(gpt.state_dict(), strict=False)  # the same weights where it has them
    without_mlps = [Intervention(i, "mlp") for i in range(gpt.config.n_layer)]
    torch.testing.assert_close(attention_only(idx), gpt.trace(idx, interventions=without_mlps).logits)
    assert len(attention_only.trace(idx).heads) == gpt.config.n_layer


def test_an_induction_head_scores_one_and_even_attention_one_over_the_position():
    length, T = 5, 10
    induction = torch.zeros(2, 1, T, T)
    for t in range(T):  # the first copy attends to itself; the second to the token after the earlier occurrence
        induction[:, :, t, t - length + 1 if t >= length else t] = 1.0
    even = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1).unsqueeze(1)
    weights = torch.cat([induction, even.expand(2, 1, T, T)], dim=1)  # head 0: induction, head 1: even
    scores = induction_scores(weights, length)
    expected_even = torch.tensor([1 / (t + 1) for t in range(length, T)]).mean()
    torch.testing.assert_close(scores, torch.stack([torch.tensor(1.0), expected_even]))
    assert uniform_induction_score(length) == pytest.approx(expected_even.item())


def test_repeated_random_tokens_repeat_and_stay_the_same():
    tokens = repeated_random_tokens(vocab_size=7, length=6, batch=3)
    assert tokens.shape == (3, 12) and torch.equal(tokens[:, :6], tokens[:, 6:])
    assert torch.equal(tokens, repeated_random_tokens(7, 6, 3)) and tokens.max() < 7


def test_the_in_context_score_compares_the_stated_positions():
    assert in_context_positions(256) == (range(16, 32), range(224, 256))
    assert in_context_positions(64) == (range(4, 8), range(56, 64))
    early, late = in_context_positions(2)
    assert len(early) == len(late) == 1 and early.stop <= late.start
    losses = torch.full((256,), 100.0)  # positions outside the two bands must not count
    losses[16:32], losses[224:256] = 2.0, 1.5
    assert in_context_score(losses) == pytest.approx(-0.5)
