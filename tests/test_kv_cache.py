"""The KV cache: feeding tokens one at a time through the cache gives what a full recompute gives."""

import pytest
import torch

from lightning_modules import GPT2Mini
from lightning_modules.transformer import KVCache
from tiny import tiny_gpt

VOCAB, BLOCK = 11, 16


def tiny(**kwargs) -> GPT2Mini:
    return tiny_gpt(vocab_size=VOCAB, n_embd=32, block_size=BLOCK, **kwargs)


@pytest.mark.parametrize("attn_impl", ["sdpa", "manual"])
def test_incremental_forward_matches_full_forward(attn_impl):
    model = tiny(attn_impl=attn_impl)
    idx = torch.randint(0, VOCAB, (2, BLOCK), generator=torch.Generator().manual_seed(1))
    full = model(idx)
    caches = [KVCache(BLOCK) for _ in model.gpt.blocks]
    prefill = model(idx[:, :5], caches)  # a prompt of several tokens, then one token at a time
    steps = [model(idx[:, t : t + 1], caches) for t in range(5, BLOCK)]
    torch.testing.assert_close(torch.cat([prefill, *steps], dim=1), full, atol=1e-5, rtol=1e-5)
    assert len(caches[0]) == BLOCK


def test_cache_refuses_to_grow_past_block_size():
    model = tiny()
    caches = [KVCache(BLOCK) for _ in model.gpt.blocks]
    model(torch.zeros(1, BLOCK, dtype=torch.long), caches)
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(1, 1, dtype=torch.long), caches)


def test_cache_fills_one_buffer_in_place_and_refuses_to_overflow():
    cache = KVCache(4)
    k1, v1, k2, v2 = (torch.randn(2, 3, t, 5) for t in (1, 1, 3, 3))
    cache.extend(k1, v1)
    buffer = cache.k
    k, v = cache.extend(k2, v2)
    assert cache.k is buffer  # filled in place, not grown
    assert torch.equal(k, torch.cat((k1, k2), dim=-2)) and torch.equal(v, torch.cat((v1, v2), dim=-2))
    assert len(cache) == 4
    with pytest.raises(ValueError, match="holds 4 positions"):
        cache.extend(k1, v1)


@pytest.mark.parametrize("prompt_len", [1, 5])
def test_greedy_tokens_are_identical_with_and_without_cache_across_the_block_boundary(prompt_len):
    model = tiny()
    idx = torch.randint(0, VOCAB, (1, prompt_len), generator=torch.Generator().manual_seed(2))
    new = 3 * BLOCK  # well past the window, where it slides
    cached = model.generate(idx, new, temperature=0, use_cache=True)
    plain = model.generate(idx, new, temperature=0, use_cache=False)
    assert cached.shape == (1, prompt_len + new)
    assert torch.equal(cached, plain)


@pytest.mark.parametrize("prompt_len", [1, 5])
def test_seeded_sampling_is_identical_with_and_without_cache(prompt_len):
    model = tiny()
    idx = torch.randint(0, VOCAB, (3, prompt_len), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    cached = model.generate(idx, 2 * BLOCK, temperature=1.0, top_k=5, use_cache=True)
    torch.manual_seed(7)
    plain = model.generate(idx, 2 * BLOCK, temperature=1.0, top_k=5, use_cache=False)
    assert torch.equal(cached, plain)


def test_prompt_longer_than_block_size_is_cropped_like_without_cache():
    model = tiny()
    idx = torch.randint(0, VOCAB, (1, BLOCK + 7), generator=torch.Generator().manual_seed(4))
    assert torch.equal(model.generate(idx, 10, temperature=0), model.generate(idx, 10, temperature=0, use_cache=False))
