"""Induction heads and in-context learning, measured as Olsson et al. (2022) measure them.

An induction head completes patterns: having seen "... A B ... A", it attends from the second A to the B that
followed the first one, and predicts B. It needs two layers (a head that marks each token with the one before
it, then one that looks for the mark), and when it forms, the model suddenly predicts late positions of its
context better than early ones: in-context learning. These two numbers show both, on any trained GPT.
"""

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from lightning_modules.transformer import GPT


def repeated_random_tokens(vocab_size: int, length: int, batch: int = 8, seed: int = 0) -> torch.Tensor:
    """(batch, 2 * length) token ids: `length` uniformly random tokens, then the same ones again.

    Random tokens carry no meaning or grammar, so only a model that copies from earlier in the context can
    predict the second copy; a fixed seed keeps the batch the same at every validation and in every run.
    """
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, vocab_size, (batch, length), generator=generator)
    return torch.cat([first, first], dim=1)


def induction_scores(attention: torch.Tensor, length: int) -> torch.Tensor:
    """Olsson et al.'s prefix-matching score of every head, (n_head,), from its attention weights
    (B, n_head, 2 * length, 2 * length) on `repeated_random_tokens`.

    Position t of the second copy holds the token that first appeared at t - length; an induction head
    attends to the token just after that one, at t - length + 1. The score is the weight a head puts
    there, averaged over the second copy's positions and the batch: near 1 for an induction head, and
    1 / (t + 1) at position t for a head that spreads its attention evenly.
    """
    t = torch.arange(length, attention.size(-1), device=attention.device)
    return attention[:, :, t, t - length + 1].mean(dim=(0, 2))


@torch.no_grad()
def head_induction_scores(gpt: "GPT", vocab_size: int, length: int, batch: int = 8) -> torch.Tensor:
    """(n_layer, n_head) induction scores of `gpt` on `batch` fixed `repeated_random_tokens` of `length` (NaN in a
    layer without attention): what the observer logs at every validation and `experiments.induction` ranks."""
    idx = repeated_random_tokens(vocab_size, length, batch).to(next(gpt.parameters()).device)
    no_attention = torch.full((gpt.config.n_head,), float("nan"))
    attention = gpt.trace(idx, attention=True).attention
    return torch.stack([no_attention if w is None else induction_scores(w, length).cpu() for w in attention])


def uniform_induction_score(length: int) -> float:
    """The induction score of a head that spreads its attention evenly over the positions it may see: the mean
    of 1 / (t + 1) over the second copy, t = length ... 2 * length - 1 (about ln 2 / length)."""
    return sum(1 / (t + 1) for t in range(length, 2 * length)) / length


def in_context_positions(block_size: int) -> tuple[range, range]:
    """The early and late positions the in-context score compares: positions [T/16, T/8) and [7T/8, T) of a
    context of T = `block_size` (16-31 and 224-255 at block 256; 4-7 and 56-63 at block 64).

    Olsson et al. compare token 500 with token 50 of a 512-token context; bands around the same fractions
    average over more positions, which a short validation needs.
    """
    early_end = max(block_size // 8, 1)
    return range(min(block_size // 16, early_end - 1), early_end), range(block_size - early_end, block_size)


def loss_by_position(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T, vocab) logits and (B, T) targets -> (T,) cross-entropy at each position, averaged over the batch."""
    losses = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    return losses.mean(dim=0)


def in_context_score(losses: torch.Tensor) -> float:
    """Mean loss at the late positions minus at the early ones (`in_context_positions`), from (T,) losses by
    position. Negative when the model predicts better with more context; Olsson et al. see it drop at the
    same time as induction heads form."""
    early, late = in_context_positions(losses.numel())
    return (losses[late.start : late.stop].mean() - losses[early.start : early.stop].mean()).item()
