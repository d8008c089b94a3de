"""The modern-LLM switches: RMSNorm, rotary embeddings, no positions, SwiGLU, grouped-query attention, an untied
head; each computes what it names, and every combination trains, saves, loads and generates."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_modules import GPT2Mini
from lightning_modules.transformer import MLP, CausalSelfAttention, GPTConfig, KVCache, RMSNorm, apply_rope, rope_angles
from tiny import CHARS, quiet_trainer, tiny_config, tiny_gpt

N_EMBD, N_HEAD, BLOCK = 32, 4, 16
LLAMA = {"norm": "rmsnorm", "pos_emb": "rope", "mlp": "swiglu", "n_kv_head": 2, "tie_weights": False}
SWITCH_SETS = [
    {},
    {"norm": "rmsnorm"},
    {"pos_emb": "rope"},
    {"pos_emb": "none"},
    {"mlp": "swiglu"},
    {"n_kv_head": 1},
    {"n_kv_head": 2, "attn_impl": "manual"},
    {"tie_weights": False},
    LLAMA,
    {**LLAMA, "ln_style": "post", "bias": False},
]


def tiny(**switches) -> GPT2Mini:
    return tiny_gpt(**{"n_head": N_HEAD, "n_embd": N_EMBD, **switches})


def config(**switches) -> GPTConfig:
    return tiny_config(n_head=N_HEAD, n_embd=N_EMBD, **switches)


def tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, len(CHARS), (batch, length), generator=torch.Generator().manual_seed(seed))


# ---- RMSNorm --------------------------------------------------------------------------------------------


def test_rmsnorm_divides_by_the_root_mean_square_without_centring_or_bias():
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
    x = torch.randn(3, 5, 8) + 2.0  # an offset that LayerNorm would subtract and RMSNorm keeps
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    assert [name for name, _ in norm.named_parameters()] == ["weight"]
    assert not torch.allclose(norm(x), F.layer_norm(x, (8,), norm.weight), atol=0.1)


def test_norm_switch_replaces_every_layernorm():
    gpt = tiny(norm="rmsnorm").gpt
    norms = [gpt.ln_f, *(ln for b in gpt.blocks for ln in (b.ln1, b.ln2))]
    assert all(isinstance(n, RMSNorm) for n in norms)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in gpt.modules())


# ---- positions ------------------------------------------------------------------------------------------


def test_rope_scores_depend_only_on_the_offset_between_query_and_key():
    head_size, T, shift = 16, 8, 5
    cos, sin = rope_angles(T + shift, head_size)
    q, k = torch.randn(2, 2, 3, T, head_size, generator=torch.Generator().manual_seed(0))

    def scores(start: int) -> torch.Tensor:
        c, s = cos[start : start + T], sin[start : start + T]
        return apply_rope(q, c, s) @ apply_rope(k, c, s).transpose(-2, -1)

    torch.testing.assert_close(scores(shift), scores(0), atol=1e-4, rtol=1e-4)  # both moved by 5: same scores
    assert not torch.allclose(scores(0), q @ k.transpose(-2, -1), atol=1e-2)  # but the rotation does act
    torch.testing.assert_close(apply_rope(q, cos[:T], sin[:T]).norm(dim=-1), q.norm(dim=-1))  # a rotation


@pytest.mark.parametrize("pos_emb", ["rope", "none"])
def test_rope_and_none_have_no_position_parameters(pos_emb):
    model, learned = tiny(pos_emb=pos_emb), tiny()
    assert model.gpt.pos_emb is None
    assert not [name for name in model.state_dict() if "pos" in name or "rope" in name]
    assert learned.gpt.num_parameters() - model.gpt.num_parameters() == BLOCK * N_EMBD


@pytest.mark.parametrize("pos_emb", ["learned", "rope", "none"])
def test_without_positions_attention_sees_which_tokens_came_before_but_not_their_order(pos_emb):
    """One block: position t attends over the tokens 0..t, and without a position signal that is a set."""
    model = tiny(pos_emb=pos_emb, n_layer=1)
    idx = tokens(1, BLOCK)
    idx[0, :2] = torch.tensor([1, 2])
    swapped = idx.clone()
    swapped[0, :2] = torch.tensor([2, 1])
    same = torch.allclose(model(idx)[:, 2:], model(swapped)[:, 2:], atol=1e-6)
    assert same == (pos_emb == "none")


# ---- SwiGLU ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_embd", [32, 128, 384])
@pytest.mark.parametrize("bias", [True, False])
def test_swiglu_keeps_the_gelu_mlps_parameter_count(n_embd, bias):
    def count(mlp: str) -> int:
        return sum(p.numel() for p in MLP(GPTConfig(vocab_size=10, n_embd=n_embd, mlp=mlp, bias=bias)).parameters())

    assert abs(count("swiglu") / count("gelu") - 1) < 0.05


def test_swiglu_gates_one_projection_with_the_silu_of_the_other():
    mlp = MLP(config(mlp="swiglu"))
    x = torch.randn(2, 5, N_EMBD)
    gate, value = mlp.c_fc(x).chunk(2, dim=-1)
    torch.testing.assert_close(mlp(x), mlp.c_proj(F.silu(gate) * value))


# ---- grouped-query attention ----------------------------------------------------------------------------


def test_n_kv_head_equal_to_n_head_is_todays_attention_on_the_same_weights():
    x = torch.randn(2, BLOCK, N_EMBD)
    torch.manual_seed(0)
    today = CausalSelfAttention(config())
    grouped = CausalSelfAttention(config(n_kv_head=N_HEAD))
    grouped.load_state_dict(today.state_dict())  # same shapes: nothing to convert
    assert torch.equal(grouped(x), today(x))


def test_grouped_heads_equal_multi_head_attention_with_each_key_value_head_copied_into_its_group():
    x = torch.randn(2, BLOCK, N_EMBD)
    grouped = CausalSelfAttention(config(n_kv_head=2))
    full = CausalSelfAttention(config())
    head_size = N_EMBD // N_HEAD

    def widen(t: torch.Tensor) -> torch.Tensor:  # the rows of 2 key (or value) heads, each repeated for 2 queries
        q, k, v = t.split((N_EMBD, 2 * head_size, 2 * head_size))
        return torch.cat([q, *(z.unflatten(0, (2, head_size)).repeat_interleave(2, 0).flatten(0, 1) for z in (k, v))])

    with torch.no_grad():
        full.c_attn.weight.copy_(widen(grouped.c_attn.weight))
        full.c_attn.bias.copy_(widen(grouped.c_attn.bias))
        full.c_proj.load_state_dict(grouped.c_proj.state_dict())
    torch.testing.assert_close(grouped(x), full(x))


def test_the_cache_of_multi_query_attention_holds_n_head_times_fewer_values():
    def cache_values(model: GPT2Mini) -> int:
        caches = [KVCache(BLOCK) for _ in model.gpt.blocks]
        model(tokens(3, BLOCK), caches)
        assert sum(c.k.element_size() * (c.k.numel() + c.v.numel()) for c in caches) == (
            3 * BLOCK * model.gpt.kv_cache_bytes_per_token()
        )
        return sum(c.k.numel() + c.v.numel() for c in caches)

    assert cache_values(tiny()) == N_HEAD * cache_values(tiny(n_kv_head=1))
    assert tiny(n_kv_head=2).gpt.kv_cache_bytes_per_token() * 2 == tiny().gpt.kv_cache_bytes_per_token()


# ---- untied head ----------------------------------------------------------------------------------------


def test_untied_head_is_a_second_matrix():
    untied, tied = tiny(tie_weights=False).gpt, tiny().gpt
    assert untied.lm_head.weight is not untied.tok_emb.weight
    assert untied.lm_head.weight.data_ptr() != untied.tok_emb.weight.data_ptr()
    assert not torch.equal(untied.lm_head.weight, untied.tok_emb.weight)
    assert untied.num_parameters() == tied.num_parameters() + len(CHARS) * N_EMBD


# ---- with the rest of the model -------------------------------------------------------------------------


@pytest.mark.parametrize("switches", SWITCH_SETS, ids=str)
def test_changing_token_t_never_changes_earlier_logits(switches):
    model = tiny(**switches)
    idx = tokens(1, BLOCK)
    changed = idx.clone()
    changed[0, 9] = (idx[0, 9] + 1) % len(CHARS)
    before, after = model(idx), model(changed)
    torch.testing.assert_close(after[:, :9], before[:, :9])
    assert not torch.allclose(after[:, 9:], before[:, 9:])


@pytest.mark.parametrize("switches", SWITCH_SETS, ids=str)
def test_the_kv_cache_gives_the_full_forwards_logits_and_the_same_tokens(switches):
    model = tiny(**switches)
    idx = tokens(2, BLOCK)
    caches = [KVCache(BLOCK) for _ in model.gpt.blocks]
    prefill = model(idx[:, :5], caches)
    steps = [model(idx[:, t : t + 1], caches) for t in range(5, BLOCK)]
    torch.testing.assert_close(torch.cat([prefill, *steps], dim=1), model(idx), atol=1e-5, rtol=1e-5)
    prompt = idx[:1, :3]
    cached = model.generate(prompt, 3 * BLOCK, temperature=0, use_cache=True)  # well past the sliding window
    assert torch.equal(cached, model.generate(prompt, 3 * BLOCK, temperature=0, use_cache=False))


@pytest.mark.parametrize("switches", SWITCH_SETS, ids=str)
def test_attention_maps_are_recorded_for_each_head(switches):
    model = tiny(**switches)
    trace = model.gpt.trace(tokens(2, BLOCK), attention=True)
    assert [w.shape for w in trace.attention] == [(2, N_HEAD, BLOCK, BLOCK)] * 2
    torch.testing.assert_close(trace.logits, model(tokens(2, BLOCK)), atol=1e-5, rtol=1e-5)


def _combinations() -> list[dict]:
    names = ("norm", "pos_emb", "mlp", "n_kv_head", "tie_weights")
    values = (("layernorm", "rmsnorm"), ("learned", "rope", "none"), ("gelu", "swiglu"), (None, 1), (True, False))
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


@pytest.mark.slow  # 48 short Lightning runs
@pytest.mark.parametrize("switches", _combinations(), ids=str)
def test_every_combination_learns_saves_loads_and_generates(tmp_path, switches):
    text = torch.tensor([CHARS.index(c) for c in "abc defgh\n" * 40])
    windows = [(text[i : i + BLOCK], text[i + 1 : i + BLOCK + 1]) for i in range(0, len(text) - BLOCK - 1, 3)]
    model = tiny(learning_rate=1e-2, warmup_steps=0, **switches).train()
    first = model.loss(*next(iter(DataLoader(windows, batch_size=len(windows))))).item()
    trainer = quiet_trainer(max_steps=30)
    trainer.fit(model, DataLoader(windows, batch_size=16, shuffle=True))
    model.eval()
    last = model.loss(*next(iter(DataLoader(windows, batch_size=len(windows))))).item()
    assert last < 0.5 * first

    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = GPT2Mini.load_from_checkpoint(tmp_path / "model.ckpt", map_location="cpu").eval()
    assert {k: loaded.hparams[k] for k in switches} == switches
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert loaded.gpt.lm_head.weight is loaded.gpt.tok_emb.weight or not switches["tie_weights"]
    text_out = loaded.generate_text("abc", max_new_tokens=2 * BLOCK, temperature=0)
    assert text_out == model.generate_text("abc", max_new_tokens=2 * BLOCK, temperature=0)
    assert "defgh" in text_out  # it learned the line
