"""The parts of a GPT-2 block, written out by hand: causal self-attention, the MLP, and the block.

These are plain `nn.Module`s with no training logic; `GPT2Mini` stacks them. Names follow GPT-2
(`c_attn`, `c_proj`, `c_fc`) so the code reads alongside the paper and nanoGPT.
"""

import math
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

AttentionImpl = Literal["sdpa", "manual"]
LayerNormStyle = Literal["pre", "post"]


class KVCache:
    """One layer's keys and values for the positions already processed.

    During generation each new token needs its own query but every earlier position's key and value; keeping
    them means a step costs one position's work instead of the whole context's. The buffers for `max_len`
    positions are allocated once, at the first `extend`, and filled in place: growing them token by token
    would copy the whole cache at every step.
    """

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.k: torch.Tensor | None = None  # (B, n_head, max_len, head_size), valid up to `len(self)`
        self.v: torch.Tensor | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys and values (B, n_head, T, head_size); return all of them."""
        start, end = self._len, self._len + k.size(-2)
        if end > self.max_len:
            raise ValueError(f"KVCache holds {self.max_len} positions; {end} do not fit.")
        if self.k is None:
            B, n_head, _, head_size = k.shape
            self.k = k.new_empty(B, n_head, self.max_len, head_size)
            self.v = v.new_empty(B, n_head, self.max_len, head_size)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self._len = end
        return self.k[:, :, :end], self.v[:, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t only sees positions 0..t.

    `attn_impl="manual"` spells the masked softmax out; `"sdpa"` asks PyTorch's fused
    `scaled_dot_product_attention` for the same numbers, faster. With a `KVCache`, `x` holds only the
    positions after those already cached, and attends to the cached ones too.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        block_size: int,
        dropout: float,
        attn_impl: AttentionImpl = "sdpa",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.attn_impl = attn_impl
        self.dropout = dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # queries, keys and values in one matmul
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        causal_mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", causal_mask.view(1, 1, block_size, block_size), persistent=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size): each head attends on its own slice of the channels.
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = cache.extend(k, v)
        if self.attn_impl == "sdpa":
            dropout_p = self.dropout if self.training else 0.0
            if k.size(-2) == T:  # no earlier positions: the plain causal case
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            elif T == 1:  # one new position, the last: it may see every key, so no mask is needed
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            else:
                y = F.scaled_dot_product_attention(q, k, v, self._mask(T, k.size(-2)), dropout_p=dropout_p)
        else:
            y = self.attention_weights(q, k) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # put the heads side by side again
        return self.resid_dropout(self.c_proj(y))

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
    """Position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, n_embd: int, dropout: float, bias: bool = True) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One transformer block, with the lab's switches.

    - `ln_style="pre"` (GPT-2): x + sublayer(LN(x)). `"post"` (original Transformer): LN(x + sublayer(x)).
    - `disable_residual`: the block outputs the sublayer's result without adding its input back.
    - `disable_attention`: the attention sublayer is skipped, leaving an MLP-only block.
    `bias=False` drops the biases of the Linear and LayerNorm layers (nanoGPT's default).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        block_size: int,
        dropout: float,
        ln_style: LayerNormStyle = "pre",
        disable_residual: bool = False,
        disable_attention: bool = False,
        attn_impl: AttentionImpl = "sdpa",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.ln_style = ln_style
        self.disable_residual = disable_residual
        self.disable_attention = disable_attention
        self.ln1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, dropout, attn_impl, bias)
        self.ln2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        if not self.disable_attention:
            x = self._sublayer(x, partial(self.attn, cache=cache), self.ln1)
        return self._sublayer(x, self.mlp, self.ln2)

    def _sublayer(self, x: torch.Tensor, sublayer: Callable[[torch.Tensor], torch.Tensor], ln: nn.LayerNorm) -> torch.Tensor:
        skip = 0 if self.disable_residual else x
        if self.ln_style == "pre":
            return skip + sublayer(ln(x))
        return ln(skip + sublayer(x))
