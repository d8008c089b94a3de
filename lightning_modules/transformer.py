"""GPT-2, written out by hand: causal self-attention, the MLP, the block, and the network that stacks them.

These are plain `nn.Module`s with no training logic; `GPT2Mini` trains and samples a `GPT`. Names follow
GPT-2 (`c_attn`, `c_proj`, `c_fc`) so the code reads alongside the paper and nanoGPT. The parts that newer
models changed are switches of the same classes, so a GPT-2 turns into a Llama-style model one flag at a
time: `norm` (RMSNorm), `pos_emb` (rotary embeddings), `mlp` (SwiGLU), `n_kv_head` (grouped-query
attention) and `tie_weights`. `GPT.trace` is the one way in for looking inside a forward pass and for
changing it (`Intervention`: knock a head, a sublayer or a block out, or patch in another run's activations).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from errors import UserInputError

AttentionImpl = Literal["sdpa", "manual"]
LayerNormStyle = Literal["pre", "post"]
Norm = Literal["layernorm", "rmsnorm"]
PositionEmbedding = Literal["learned", "rope", "none"]
MLPKind = Literal["gelu", "swiglu"]
InterventionPart = Literal["head", "attn", "mlp", "block"]
SWITCH_CHOICES = {"ln_style": LayerNormStyle, "attn_impl": AttentionImpl, "norm": Norm, "pos_emb": PositionEmbedding,
                  "mlp": MLPKind}  # fmt: skip


class KVCache:
    """One layer's keys and values for the positions already processed.

    During generation each new token needs its own query but every earlier position's key and value; keeping
    them means a step costs one position's work instead of the whole context's. The buffers for `max_len`
    positions are allocated once, at the first `extend`, and filled in place: growing them token by token
    would copy the whole cache at every step.
    """

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.k: torch.Tensor | None = None  # (B, n_kv_head, max_len, head_size), valid up to `len(self)`
        self.v: torch.Tensor | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys and values (B, n_kv_head, T, head_size); return all of them."""
        start, end = self._len, self._len + k.size(-2)
        if end > self.max_len:
            raise ValueError(f"KVCache holds {self.max_len} positions; {end} do not fit.")
        if self.k is None:
            B, n_kv_head, _, head_size = k.shape
            self.k = k.new_empty(B, n_kv_head, self.max_len, head_size)
            self.v = v.new_empty(B, n_kv_head, self.max_len, head_size)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self._len = end
        return self.k[:, :, :end], self.v[:, :, :end]


@dataclass
class GPTConfig:
    """The network's size and switches, which every part of it reads (as in nanoGPT), checked when it is made.

    `GPT2Mini` takes the same names as arguments and passes them here. Each switch is explained where it
    acts: `Block`, `CausalSelfAttention` and `GPT`.
    """

    vocab_size: int = 65  # tiny Shakespeare's characters; CharDataModule sets the size of its text's
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256
    dropout: float = 0.1
    ln_style: LayerNormStyle = "pre"
    disable_residual: bool = False
    disable_attention: bool = False
    disable_mlp: bool = False
    attn_impl: AttentionImpl = "sdpa"
    bias: bool = True
    norm: Norm = "layernorm"
    pos_emb: PositionEmbedding = "learned"
    mlp: MLPKind = "gelu"
    n_kv_head: int | None = None  # None: as many as n_head
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size", "n_kv_head"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserInputError(f"{name} must be a positive integer, got {value}.")
        if self.n_embd % self.n_head != 0:
            raise UserInputError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                "each head gets n_embd / n_head channels."
            )
        if self.n_head % self.kv_heads != 0:
            raise UserInputError(
                f"n_head ({self.n_head}) must be divisible by n_kv_head ({self.n_kv_head}): each key/value head "
                "serves an equal group of query heads. Leave n_kv_head out (or set it to n_head) for plain "
                "multi-head attention."
            )
        if self.pos_emb == "rope" and (self.n_embd // self.n_head) % 2 != 0:
            raise UserInputError(
                f"pos_emb rope rotates channel pairs, so the head size n_embd / n_head must be even, "
                f"got {self.n_embd // self.n_head}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UserInputError(f"dropout must be in [0, 1), got {self.dropout}.")
        for name, choices in SWITCH_CHOICES.items():
            if getattr(self, name) not in get_args(choices):
                shown = ", ".join(map(repr, get_args(choices)))
                raise UserInputError(f"{name} must be one of {shown}, got {getattr(self, name)!r}.")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head


@dataclass
class Trace:
    """What a forward pass computed along the way, filled in by `GPT.trace`.

    `hidden_states[i]` is the residual stream after block i, (B, T, n_embd). `heads[i]` is what block i's
    heads output, (B, T, n_head, head_size): head j's is `heads[i][:, :, j]`, its slice of the input to
    `c_proj`; None where attention is switched off. `attention[i]` is block i's attention weights
    (B, n_head, T, T) from the written-out softmax, or None where attention is switched off; the list stays
    empty unless the weights were asked for.
    """

    record_attention: bool = False
    hidden_states: list[torch.Tensor] = field(default_factory=list)
    heads: list[torch.Tensor | None] = field(default_factory=list)
    attention: list[torch.Tensor | None] = field(default_factory=list)
    logits: torch.Tensor | None = None


@dataclass(frozen=True)
class Intervention:
    """One change to a forward pass, made by `GPT.trace(idx, interventions=[...])`: knock a part of a trained
    model out, or swap in what it computed on another input, and see what the output loses.

    `part` says where, in block `layer`:
    - `"head"`: head `head`'s output, its slice of the input to `attn.c_proj` (B, T, head_size);
    - `"attn"`, `"mlp"`: what the sublayer hands back to the block (B, T, n_embd);
    - `"block"`: the block's output, the residual stream after it (B, T, n_embd).

    `value=None` ablates: a head or a sublayer outputs zeros, and a block hands on its input unchanged (the
    residual stream passes through). A tensor replaces the part (broadcast to its shape): the part's mean over
    a reference batch is mean ablation; the same part from a clean run (`Trace.heads`, `Trace.hidden_states`)
    is activation patching.
    """

    layer: int
    part: InterventionPart
    head: int | None = None
    value: torch.Tensor | None = None


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head): each head attends on its own slice of the channels."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, n_head, T, head_size) -> (B, T, n_head * head_size): the heads side by side again."""
    B, n_head, T, head_size = y.shape
    return y.transpose(1, 2).contiguous().view(B, T, n_head * head_size)


def rope_angles(block_size: int, head_size: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angle of every position and channel pair, each (block_size, head_size // 2).

    Pair i turns by `base ** (-2i / head_size)` radians per position: the first pairs fast, the last slowly,
    like the hands of a clock, so that near and far offsets both leave a trace.
    """
    freqs = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), freqs)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + head_size / 2) of `x` (B, heads, T, head_size) by their position's angle.

    (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos). A query rotated by angle a and a key rotated by angle b
    have the dot product of the unrotated pair turned by a - b: attention then sees how far apart two
    positions are, never where they are.
    """
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t only sees positions 0..t.

    `attn_impl="manual"` spells the masked softmax out; `"sdpa"` asks PyTorch's fused
    `scaled_dot_product_attention` for the same numbers, faster. With a `KVCache`, `x` holds only the
    positions after those already cached, and attends to the cached ones too. With a `Trace` that records
    attention, the weights are computed by the written-out softmax, kept, and used for the output.

    - `n_kv_head` (grouped-query attention; Ainslie et al., 2023): the queries keep `n_head` heads, but there
      are only `n_kv_head` key and value heads, each shared by a group of `n_head / n_kv_head` query heads.
      The cache stores only those, so it shrinks by the group size. 1 is multi-query attention.
    - `pos_emb="rope"` (rotary embeddings; Su et al., 2021): queries and keys are rotated by their position
      (`apply_rope`) before the keys enter the cache, in place of GPT's learned position vectors.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        n_embd, block_size, bias = config.n_embd, config.block_size, config.bias
        self.n_head, self.n_kv_head = config.n_head, config.kv_heads
        self.head_size = n_embd // config.n_head
        self.attn_impl = config.attn_impl
        self.dropout = config.dropout
        kv_size = self.n_kv_head * self.head_size
        self.c_attn = nn.Linear(n_embd, n_embd + 2 * kv_size, bias=bias)  # queries, keys and values in one matmul
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        causal_mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", causal_mask.view(1, 1, block_size, block_size), persistent=False)
        self.rope = config.pos_emb == "rope"
        if self.rope:
            cos, sin = rope_angles(block_size, self.head_size)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, trace: Trace | None = None) -> torch.Tensor:
        T, C = x.shape[1:]
        kv_size = self.n_kv_head * self.head_size
        q, k, v = self.c_attn(x).split((C, kv_size, kv_size), dim=2)
        q, k, v = split_heads(q, self.n_head), split_heads(k, self.n_kv_head), split_heads(v, self.n_kv_head)
        if self.rope:
            start = len(cache) if cache is not None else 0  # the new positions follow the cached ones
            cos, sin = self.rope_cos[start : start + T], self.rope_sin[start : start + T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.extend(k, v)
        if self.n_kv_head < self.n_head:  # each key/value head serves its group of query heads
            group = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        if trace is not None and trace.record_attention:
            weights = self.attention_weights(q, k)
            trace.attention.append(weights)
            y = weights @ v
        elif self.attn_impl == "sdpa":
            dropout_p = self.dropout if self.training else 0.0
            if k.size(-2) == T:  # no earlier positions: the plain causal case
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            elif T == 1:  # one new position, the last: it may see every key, so no mask is needed
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            else:
                y = F.scaled_dot_product_attention(q, k, v, self._mask(T, k.size(-2)), dropout_p=dropout_p)
        else:
            y = self.attention_weights(q, k) @ v
        if trace is not None:
            trace.heads.append(y.transpose(1, 2))
        return self.resid_dropout(self.c_proj(merge_heads(y)))

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d)) with the future masked out: (B, n_head, T_q, T_k), rows sum to 1.

        The T_q queries are the last positions of the T_k keys (T_q < T_k when earlier keys are cached).
        """
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(~self._mask(q.size(-2), k.size(-2)), float("-inf"))
        return self.attn_dropout(F.softmax(scores, dim=-1))

    def _mask(self, t_q: int, t_k: int) -> torch.Tensor:
        """Which keys each query may see: the rows of the causal mask for the last t_q of t_k positions."""
        return self.causal_mask[:, :, t_k - t_q : t_k, :t_k]


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4x, GELU, project back.

    `mlp="swiglu"` (Shazeer, 2020; PaLM, Llama) gates instead: c_proj(SiLU(gate) * value), where gate and
    value are two projections of the input, computed by `c_fc` in one matmul. That is three matrices where
    GELU has two, so the hidden width is 8/3 n_embd instead of 4 n_embd, which keeps the weights at
    3 * n_embd * 8/3 n_embd = 8 n_embd^2, the GELU MLP's 2 * n_embd * 4 n_embd.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        hidden = round(8 * config.n_embd / 3) if self.swiglu else 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, 2 * hidden if self.swiglu else hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            gate, value = self.c_fc(x).chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(self.c_fc(x))
        return self.dropout(self.c_proj(h))


class RMSNorm(nn.Module):
    """x / RMS(x) * g (Zhang and Sennrich, 2019): LayerNorm without subtracting the mean and without a bias.

    Cheaper, and in practice as good; Llama-style models use it wherever GPT-2 has a LayerNorm. The
    mean square is taken in float32 so that it stays accurate under bf16 mixed precision.
    """

    def __init__(self, n_embd: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def make_norm(config: GPTConfig) -> nn.Module:
    """The normalisation layer the `norm` switch names."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd)
    return nn.LayerNorm(config.n_embd, bias=config.bias)


class Block(nn.Module):
    """One transformer block, with the lab's switches.

    - `ln_style="pre"` (GPT-2): x + sublayer(LN(x)). `"post"` (original Transformer): LN(x + sublayer(x)).
    - `disable_residual`: the block outputs the sublayer's result without adding its input back.
    - `disable_attention`: the attention sublayer is skipped, leaving an MLP-only block.
    - `disable_mlp`: the MLP sublayer is not built, leaving an attention-only block (the setting of the
      induction-head papers, Elhage et al., 2021; Olsson et al., 2022).
    - `norm`: which normalisation LN is, LayerNorm or `RMSNorm`; `mlp`: GELU or SwiGLU (see `MLP`).
    `bias=False` drops the biases of the Linear and LayerNorm layers (nanoGPT's default).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_style = config.ln_style
        self.disable_residual = config.disable_residual
        self.disable_attention = config.disable_attention
        self.ln1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln2 = None if config.disable_mlp else make_norm(config)
        self.mlp = None if config.disable_mlp else MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, trace: Trace | None = None) -> torch.Tensor:
        if not self.disable_attention:
            x = self._sublayer(x, partial(self.attn, cache=cache, trace=trace), self.ln1)
        elif trace is not None:
            trace.heads.append(None)
            if trace.record_attention:
                trace.attention.append(None)
        if self.mlp is not None:
            x = self._sublayer(x, self.mlp, self.ln2)
        return x

    def _sublayer(
        self, x: torch.Tensor, sublayer: Callable[[torch.Tensor], torch.Tensor], ln: nn.Module
    ) -> torch.Tensor:
        skip = 0 if self.disable_residual else x
        if self.ln_style == "pre":
            return skip + sublayer(ln(x))
        return ln(skip + sublayer(x))


class GPT(nn.Module):
    """Token and position embeddings, a stack of `Block`s, a final LayerNorm and a tied language-model head.

    The switches of `GPTConfig` apply to every block. Two act here as well: `pos_emb` keeps GPT-2's learned
    position vectors (`"learned"`), leaves positions to the rotary embeddings inside attention (`"rope"`),
    or gives the model no position signal at all (`"none"`: causal masking alone lets it infer positions);
    `tie_weights=False` gives the head its own matrix instead of the token embedding's. Weights start as in
    GPT-2: N(0, 0.02), with the projections that write into the residual stream (`c_proj`) scaled down by
    sqrt(2 * n_layer), one factor per residual addition.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.block_size = config.block_size
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd) if config.pos_emb == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self, idx: torch.Tensor, caches: list[KVCache] | None = None, trace: Trace | None = None
    ) -> torch.Tensor:
        """Token ids (B, T) -> next-token logits (B, T, vocab_size).

        With `caches` (one `KVCache` per block), `idx` continues the positions already in them. With a
        `trace`, what each block computed is kept in it (see `GPT.trace`).
        """
        start = len(caches[0]) if caches else 0
        T = idx.size(1)
        if start + T > self.block_size:
            raise ValueError(f"Sequence of length {start + T} is longer than block_size {self.block_size}.")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches else None, trace)
            if trace is not None:
                trace.hidden_states.append(x)
        return self.unembed(x)

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, n_embd) -> logits, through the final normalisation and the head.

        Applied to the output of an earlier block instead of the last, this is the "logit lens": what the
        model would predict if it stopped there.
        """
        return self.lm_head(self.ln_f(x))

    def trace(self, idx: torch.Tensor, attention: bool = False, interventions: Sequence[Intervention] = ()) -> Trace:
        """One forward pass that keeps what it computed along the way: the hidden state after every block,
        every head's output, the logits, and with `attention` every block's attention weights.

        This is the way in for observing the network (attention maps, residual-stream norms, logit lens) and
        for intervening on it: each `Intervention` is a forward hook on the module it names, there only for
        this pass. With `attention` the blocks use the written-out softmax, so the weights are exactly what
        they apply. The trace keeps the residual stream as the interventions left it, and each head's output as
        the head computed it, before an intervention on that head.
        """
        trace = Trace(record_attention=attention)
        handles = []
        try:
            for edit in interventions:
                handles.append(self._hook(edit))
            trace.logits = self(idx, trace=trace)
        finally:
            for handle in handles:
                handle.remove()
        return trace

    def _hook(self, edit: Intervention) -> RemovableHandle:
        """Register the forward hook that makes `edit` (see `Intervention`)."""
        self.check_intervention(edit)
        block = self.blocks[edit.layer]
        if edit.part == "head":
            head_size = self.config.n_embd // self.config.n_head
            channels = slice(edit.head * head_size, (edit.head + 1) * head_size)

            def replace_head(module: nn.Module, args: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
                heads = args[0].clone()  # the heads side by side: (B, T, n_head * head_size)
                heads[..., channels] = 0.0 if edit.value is None else edit.value.to(heads.dtype)
                return (heads,)

            return block.attn.c_proj.register_forward_pre_hook(replace_head)

        def replace_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            if edit.value is not None:
                return edit.value.to(output.dtype).expand_as(output)
            return args[0] if edit.part == "block" else torch.zeros_like(output)

        return {"attn": block.attn, "mlp": block.mlp, "block": block}[edit.part].register_forward_hook(replace_output)

    def check_intervention(self, edit: Intervention) -> None:
        """A part the network does not have gets one line (a `UserInputError`) that says which it has."""
        c = self.config
        if edit.part not in get_args(InterventionPart):
            shown = ", ".join(map(repr, get_args(InterventionPart)))
            raise UserInputError(f"Intervention part must be one of {shown}, got {edit.part!r}.")
        if not 0 <= edit.layer < c.n_layer:
            raise UserInputError(
                f"Layer {edit.layer} does not exist: the model has {c.n_layer} (0 to {c.n_layer - 1})."
            )
        if edit.part in ("head", "attn") and c.disable_attention:
            raise UserInputError(
                f"Layer {edit.layer} has no attention to intervene on: the model has disable_attention."
            )
        if edit.part == "mlp" and c.disable_mlp:
            raise UserInputError(f"Layer {edit.layer} has no MLP to intervene on: the model has disable_mlp.")
        if edit.part == "head" and (edit.head is None or not 0 <= edit.head < c.n_head):
            raise UserInputError(f"Head {edit.head} does not exist: each layer has {c.n_head} (0 to {c.n_head - 1}).")

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count (a tied token embedding counted once); `non_embedding` leaves out the token and
        position embeddings (an untied head is counted: it is the output layer)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= sum(emb.weight.numel() for emb in (self.tok_emb, self.pos_emb) if emb is not None)
        return n

    def kv_cache_bytes_per_token(self) -> int:
        """What one position adds to the KV cache: a key and a value of `n_kv_head` heads in every block that
        attends, at the weights' precision."""
        c = self.config
        if c.disable_attention:
            return 0
        values_per_token = 2 * c.n_layer * c.kv_heads * (c.n_embd // c.n_head)
        return values_per_token * self.tok_emb.weight.element_size()
