"""Muon for the matrices inside the blocks, AdamW for the rest, behind one optimizer.

Muon (Jordan et al., 2024) replaces each weight matrix's momentum by the nearest orthogonal matrix (a few
Newton-Schulz iterations) before stepping, so that every direction of the matrix moves by the same amount
instead of the few that dominate the gradient. Its authors use it for the 2-D matrices of the hidden layers
only, and keep AdamW for the embeddings, the output head, the norms and the biases; PyTorch's
`torch.optim.Muon` accepts 2-D parameters only. Lightning's automatic optimization (gradient clipping, the
learning-rate schedule, checkpoints, the `on_before_optimizer_step` callbacks) drives one optimizer, so
`MuonWithAdamW` holds both and presents them as one.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from errors import UserInputError


def muon_matrices(network: nn.Module) -> list[nn.Parameter]:
    """The parameters of a `GPT` that Muon trains: the 2-D weight matrices inside its blocks (attention's
    `c_attn` and `c_proj`, the MLP's `c_fc` and `c_proj`). The embeddings and the head are matrices too, but
    they map tokens, not hidden states: they stay on AdamW, as Muon's authors prescribe."""
    return [p for p in network.blocks.parameters() if p.requires_grad and p.dim() == 2]


class MuonWithAdamW(torch.optim.Optimizer):
    """`torch.optim.Muon` on `muon_params`, `torch.optim.AdamW` on `adamw_groups`, stepped together.

    `param_groups` is the two optimizers' own groups, so a learning-rate schedule scales both (each from
    its own peak rate: `muon_lr` and `lr`), and gradient clipping sees every parameter. The state dict holds
    both optimizers' state dicts, so a run resumes exactly. Muon's `adjust_lr_fn` is PyTorch's default
    (Keller Jordan's): the update is scaled by sqrt(max(1, rows / columns)).
    """

    def __init__(
        self,
        muon_params: list[nn.Parameter],
        adamw_groups: list[dict[str, Any]],
        *,
        lr: float,
        betas: tuple[float, float],
        muon_lr: float,
        muon_momentum: float,
        muon_weight_decay: float,
    ) -> None:
        check_muon_settings(muon_lr, muon_momentum)
        self.muon = torch.optim.Muon(
            [{"name": "muon", "params": muon_params}],
            lr=muon_lr,
            momentum=muon_momentum,
            weight_decay=muon_weight_decay,
        )
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=betas)
        super().__init__(self._groups(), defaults={})  # the same group dicts, not copies: see `_groups`

    def _groups(self) -> list[dict[str, Any]]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self.param_groups = self._groups()  # loading replaced the inner optimizers' group dicts


def check_muon_settings(muon_lr: float, muon_momentum: float) -> None:
    """One clear line for settings Muon cannot use, when the model is built rather than when it trains."""
    if not muon_lr > 0:
        raise UserInputError(f"muon_lr must be positive, got {muon_lr}.")
    if not 0 <= muon_momentum < 1:
        raise UserInputError(f"muon_momentum must be in [0, 1), got {muon_momentum}.")
