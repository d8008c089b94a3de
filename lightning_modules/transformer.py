"""The parts of a GPT-2 block, written out by hand: causal self-attention, the MLP, and the block.

These are plain `nn.Module`s with no training logic; `GPT2Mini` stacks them. Names follow GPT-2
(`c_attn`, `c_proj`, `c_fc`) so the code reads alongside the paper and nanoGPT.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

AttentionImpl = Literal["sdpa", "manual"]
LayerNormStyle = Literal["pre", "post"]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t only sees positions 0..t.

    `attn_impl="manual"` spells the masked softmax out; `"sdpa"` asks PyTorch's fused
    `scaled_dot_product_attention` for the same numbers, faster.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size): each head attends on its own slice of the channels.
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.attn_impl == "sdpa":
            dropout_p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            y = self.attention_weights(q, k) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # put the heads side by side again
        return self.resid_dropout(self.c_proj(y))

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d)) with the future masked out: (B, n_head, T, T), rows sum to 1."""
        T = q.size(-2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(~self.causal_mask[:, :, :T, :T], float("-inf"))
        return self.attn_dropout(F.softmax(scores, dim=-1))


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.disable_attention:
            x = self._sublayer(x, self.attn, self.ln1)
        return self._sublayer(x, self.mlp, self.ln2)

    def _sublayer(self, x: torch.Tensor, sublayer: nn.Module, ln: nn.LayerNorm) -> torch.Tensor:
        skip = 0 if self.disable_residual else x
        if self.ln_style == "pre":
            return skip + sublayer(ln(x))
        return ln(skip + sublayer(x))
