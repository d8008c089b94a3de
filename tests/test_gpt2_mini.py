"""GPT2Mini on its own: shapes, causality, tying, generation, and clear errors at construction."""

import math

import pytest
import torch

from errors import UserInputError
from lightning_modules import GPT2Mini
from lightning_modules.transformer import GPT, GPTConfig
from tiny import CHARS, tiny_gpt


def tiny(**kwargs) -> GPT2Mini:
    return tiny_gpt(**{"n_embd": 32, **kwargs})


def test_logits_shape():
    idx = torch.randint(0, len(CHARS), (3, 10))
    assert tiny()(idx).shape == (3, 10, len(CHARS))


def test_builds_without_datamodule_or_trainer():
    model = GPT2Mini(vocab_size=65, n_layer=2)
    assert model(torch.zeros(1, 5, dtype=torch.long)).shape == (1, 5, 65)


@pytest.mark.parametrize("attn_impl", ["sdpa", "manual"])
def test_changing_token_t_never_changes_earlier_logits(attn_impl):
    model = tiny(attn_impl=attn_impl)
    idx = torch.randint(0, len(CHARS), (1, 16), generator=torch.Generator().manual_seed(0))
    t = 9
    changed = idx.clone()
    changed[0, t] = (idx[0, t] + 1) % len(CHARS)
    before, after = model(idx), model(changed)
    torch.testing.assert_close(after[:, :t], before[:, :t])
    assert not torch.allclose(after[:, t:], before[:, t:])


def test_lm_head_is_tied_to_token_embedding():
    model = tiny()
    assert model.gpt.lm_head.weight is model.gpt.tok_emb.weight
    counted_once = sum(p.numel() for p in model.parameters())
    assert counted_once == model.gpt.num_parameters()
    assert counted_once < sum(p.numel() for p in model.state_dict().values())


def test_sdpa_model_equals_manual_model():
    idx = torch.randint(0, len(CHARS), (2, 16))
    manual = tiny(attn_impl="manual")
    torch.testing.assert_close(tiny()(idx), manual(idx), atol=1e-5, rtol=1e-5)


def test_disable_attention_makes_attention_weights_irrelevant():
    model = tiny(disable_attention=True)
    idx = torch.randint(0, len(CHARS), (2, 16))
    before = model(idx)
    with torch.no_grad():
        for block in model.gpt.blocks:
            for p in block.attn.parameters():
                p.normal_()
    torch.testing.assert_close(model(idx), before)


def test_greedy_generation_is_top_k_1_and_extends_past_block_size():
    model = tiny()
    start = torch.zeros(1, 1, dtype=torch.long)
    greedy = model.generate(start, max_new_tokens=40, temperature=0)
    torch.manual_seed(5)
    top1 = model.generate(start, max_new_tokens=40, top_k=1)
    assert greedy.shape == (1, 41)
    assert torch.equal(greedy, top1)


def test_generate_text_keeps_the_prompt_and_adds_characters():
    text = tiny().generate_text("ab", max_new_tokens=7)
    assert text.startswith("ab") and len(text) == 9 and set(text) <= set(CHARS)


def test_streamed_characters_are_the_continuation_generate_text_returns():
    model = tiny_gpt(vocab_size=5, n_layer=1, block_size=8, chars=list("abc \n"))
    streamed: list[str] = []
    torch.manual_seed(3)
    text = model.generate_text("ab", max_new_tokens=20, on_text=streamed.append)  # past block_size: the window slides
    torch.manual_seed(3)
    assert text == model.generate_text("ab", max_new_tokens=20)  # watching does not change what is sampled
    assert len(streamed) == 20 and all(len(ch) == 1 for ch in streamed)
    assert "ab" + "".join(streamed) == text


def test_generation_left_part_way_restores_train_mode():
    model = tiny().train()
    start = torch.zeros(1, 1, dtype=torch.long)
    for i, token in enumerate(model.generate_tokens(start, max_new_tokens=10)):
        assert not model.training and token.shape == (1, 1)  # eval mode while generating
        if i == 2:
            break
    assert model.training
    tokens = model.generate_tokens(start, max_new_tokens=10)
    next(tokens)
    tokens.close()
    assert model.training

    def stop(ch: str) -> None:
        raise KeyboardInterrupt  # Ctrl-C while a character is printed

    with pytest.raises(KeyboardInterrupt):
        model.generate_text("ab", max_new_tokens=10, on_text=stop)
    assert model.training


def test_generate_tokens_yields_what_generate_appends():
    model = tiny()
    start = torch.tensor([[1, 2, 3]])
    torch.manual_seed(4)
    tokens = list(model.generate_tokens(start, max_new_tokens=20, top_k=3))
    torch.manual_seed(4)
    assert torch.equal(torch.cat((start, *tokens), dim=1), model.generate(start, max_new_tokens=20, top_k=3))


def test_prompt_with_unknown_characters_names_them():
    with pytest.raises(UserInputError, match=r"'Z', 'x'"):
        tiny().generate_text("abxZ", max_new_tokens=3)


def test_empty_prompt_is_refused():
    with pytest.raises(UserInputError, match="empty"):
        tiny().generate_text("", max_new_tokens=3)


def test_the_network_checks_its_own_settings():
    with pytest.raises(ValueError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
        GPT(GPTConfig(n_embd=30, n_head=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_embd": 30, "n_head": 4}, r"n_embd \(30\).*n_head \(4\)"),
        ({"ln_style": "middle"}, "ln_style must be one of 'pre', 'post'"),
        ({"n_layer": 0}, "n_layer must be a positive integer"),
        ({"block_size": -1}, "block_size must be a positive integer"),
        ({"vocab_size": 0}, "vocab_size must be a positive integer"),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"chars": list("abc")}, "chars has 3 characters but vocab_size is 10"),
        ({"n_head": 4, "n_kv_head": 3}, r"n_head \(4\) must be divisible by n_kv_head \(3\)"),
        ({"n_kv_head": 0}, "n_kv_head must be a positive integer, got 0"),
        ({"n_embd": 30, "n_head": 10, "pos_emb": "rope"}, "head size n_embd / n_head must be even, got 3"),
        ({"norm": "batchnorm"}, "norm must be one of 'layernorm', 'rmsnorm'"),
        ({"pos_emb": "sinusoidal"}, "pos_emb must be one of 'learned', 'rope', 'none'"),
        ({"mlp": "relu"}, "mlp must be one of 'gelu', 'swiglu'"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_configuration_gets_a_clear_error(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        tiny(**kwargs)


def test_the_checkpoint_keeps_every_network_setting_even_the_defaults():
    model = GPT2Mini(vocab_size=10, n_layer=1)
    assert {name: model.hparams[name] for name in vars(model.gpt.config)} == vars(model.gpt.config)
    assert model.hparams.n_head == 4 and model.hparams.pos_emb == "learned"  # GPTConfig's defaults, saved


def test_weight_decay_skips_biases_and_layernorm():
    model = tiny()
    model.trainer = type("T", (), {"estimated_stepping_batches": 100})()
    optimizer = model.configure_optimizers()["optimizer"]
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert any(p is model.gpt.blocks[0].ln1.weight for p in plain["params"])


def test_uniform_guess_loss_is_log_vocab():
    """At initialisation the logits are near zero, so the loss starts near log(vocab_size)."""
    model = tiny()
    x, y = torch.randint(0, len(CHARS), (2, 8, 16))
    assert model.loss(x, y).item() == pytest.approx(math.log(len(CHARS)), abs=0.1)


@pytest.mark.slow
def test_compile_sends_the_loss_through_torch_compile_with_the_same_value():
    model = tiny_gpt(vocab_size=11, n_layer=1, block_size=8, compile=True)
    assert "compile" not in model.hparams  # how to run, not what the model is: never saved
    assert model._loss_fn != model.loss
    batch = (torch.randint(0, 11, (2, 8)), torch.randint(0, 11, (2, 8)))
    with torch.no_grad():
        torch.testing.assert_close(model._loss_fn(*batch), model.loss(*batch))
