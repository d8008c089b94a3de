"""The transformer parts: causality, the attention fast path, and what each block switch changes."""

import pytest
import torch

from lightning_modules.transformer import Block, CausalSelfAttention, GPTConfig
from tiny import tiny_config

N_EMBD, N_HEAD, BLOCK = 32, 4, 16


def config(**switches) -> GPTConfig:
    return tiny_config(**{"n_embd": N_EMBD, "n_head": N_HEAD, "block_size": BLOCK, **switches})


def block(**switches) -> Block:
    torch.manual_seed(0)
    return Block(config(dropout=0.0, **switches)).eval()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, BLOCK, N_EMBD, generator=torch.Generator().manual_seed(1))


def test_sdpa_path_equals_manual_path(x):
    torch.manual_seed(0)
    attn = CausalSelfAttention(config(dropout=0.1)).eval()
    fast = attn(x)
    attn.attn_impl = "manual"
    torch.testing.assert_close(attn(x), fast, atol=1e-5, rtol=1e-5)


def test_attention_weights_are_causal_and_normalised(x):
    attn = CausalSelfAttention(config(dropout=0.0)).eval()
    q, k, _ = attn.c_attn(x).split(N_EMBD, dim=2)
    q, k = (z.view(2, BLOCK, N_HEAD, -1).transpose(1, 2) for z in (q, k))
    weights = attn.attention_weights(q, k)
    assert torch.all(weights.triu(diagonal=1) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, N_HEAD, BLOCK))


@pytest.mark.parametrize("ln_style", ["pre", "post"])
@pytest.mark.parametrize("disable_residual", [False, True])
def test_block_computes_what_its_switches_name(x, ln_style, disable_residual):
    b = block(ln_style=ln_style, disable_residual=disable_residual)
    r = 0 if disable_residual else 1
    if ln_style == "pre":
        h = r * x + b.attn(b.ln1(x))
        expected = r * h + b.mlp(b.ln2(h))
    else:
        h = b.ln1(r * x + b.attn(x))
        expected = b.ln2(r * h + b.mlp(h))
    torch.testing.assert_close(b(x), expected)


def test_disable_attention_leaves_an_mlp_only_block(x):
    b = block(disable_attention=True)
    torch.testing.assert_close(b(x), x + b.mlp(b.ln2(x)))
    before = b(x)
    with torch.no_grad():
        for p in b.attn.parameters():
            p.add_(torch.randn_like(p))
    torch.testing.assert_close(b(x), before)


def test_attention_weights_matter_when_attention_is_on(x):
    b = block()
    before = b(x)
    with torch.no_grad():
        b.attn.c_attn.weight.add_(1.0)
    assert not torch.allclose(b(x), before)


def test_switches_keep_the_same_parameters():
    names = {k: v.shape for k, v in block().state_dict().items()}
    for switches in ({"ln_style": "post"}, {"disable_residual": True}, {"disable_attention": True}):
        assert {k: v.shape for k, v in block(**switches).state_dict().items()} == names
