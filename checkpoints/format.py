"""What the lab writes into a checkpoint beyond Lightning's own state, and how every earlier format is read.

The lab's section of a checkpoint is `checkpoint["lab"] = {"model": <class name>, "format": FORMAT}` and
`checkpoint["rng_states"]` (see `callbacks.CheckpointExtras`, which writes both). `FORMAT` is bumped whenever
older code could not read what newer code writes:

- no stamp: written before the lab stamped its files; otherwise as format 1, without random-generator states.
- 1: the stamp and the random-generator states. GPT2Mini's weights sat on the system (`tok_emb.weight`).
- 2: GPT2Mini's weights under its `GPT` network (`gpt.tok_emb.weight`).
- 3: one learning-rate schedule for every model (`lightning_modules.lr_schedule`). A DDPM trained before at a
  constant rate (`lr_decay_steps` null, a `LinearLR`) now has the shared `LambdaLR` with `min_lr` equal to
  its learning rate, which keeps the rate constant.

`upgrade` brings a checkpoint of any of these to the current format as it is loaded; the models call it from
`on_load_checkpoint`, which Lightning runs for `load_from_checkpoint` and for `fit --ckpt_path` alike.
Every step looks at what the checkpoint holds, not only at its stamp, so a file written without the lab's
stamp (by a plain `Trainer`) is read right too. The file on disk is never changed.
"""

import random
from typing import Any

import numpy as np
import torch

FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
SCHEDULER_STATE = ("base_lrs", "last_epoch", "_step_count", "_get_lr_called_within_step", "_last_lr", "_is_initial")


def stamp(checkpoint: dict[str, Any], model: str) -> None:
    """Mark the checkpoint as written by `model` (a class name) in this format."""
    checkpoint["lab"] = {"model": model, "format": FORMAT}


def written_format(checkpoint: dict[str, Any]) -> int | None:
    """The format the checkpoint says it has; None for a file without the lab's stamp."""
    return checkpoint.get("lab", {}).get("format")


def written_by(checkpoint: dict[str, Any]) -> str:
    """The class name of the model that wrote the checkpoint, from the stamp or LightningCLI's record; "" if unknown."""
    class_path = checkpoint.get("hyper_parameters", {}).get("_class_path", "")
    return checkpoint.get("lab", {}).get("model") or class_path.rpartition(".")[2]


def upgrade(checkpoint: dict[str, Any], model: str) -> dict[str, Any]:
    """Bring a checkpoint of `model` (a class name) from any earlier format to the current one, in place."""
    if model == "GPT2Mini":
        _weights_under_the_network(checkpoint["state_dict"])
    if model == "DDPM" and (written_format(checkpoint) or 1) < 3:
        _one_learning_rate_schedule(checkpoint)
    return checkpoint


def _weights_under_the_network(state_dict: dict[str, torch.Tensor]) -> None:
    """Format 2: `tok_emb.weight` -> `gpt.tok_emb.weight`, as GPT2Mini holds its network in `self.gpt`."""
    for key in [k for k in state_dict if not k.startswith("gpt.")]:
        state_dict[f"gpt.{key}"] = state_dict.pop(key)


def _one_learning_rate_schedule(checkpoint: dict[str, Any]) -> None:
    """Format 3: a DDPM that trained at a constant rate (no lr_decay_steps) keeps it as `min_lr = learning_rate`
    (null now means "decay over the run"), and its LinearLR state becomes the shared schedule's LambdaLR state."""
    hparams = checkpoint.get("hyper_parameters", {})
    if hparams.get("lr_decay_steps") is None and "learning_rate" in hparams:
        hparams["min_lr"] = hparams["learning_rate"]
    checkpoint["lr_schedulers"] = [
        state if "lr_lambdas" in state else _as_lambda_lr(state) for state in checkpoint.get("lr_schedulers", [])
    ]


def _as_lambda_lr(state: dict[str, Any]) -> dict[str, Any]:
    """A LinearLR's state as LambdaLR's: the step counts and rates, and no state of its own for the multiplier."""
    kept = {key: state[key] for key in SCHEDULER_STATE if key in state}
    return {**kept, "lr_lambdas": [None] * len(state["base_lrs"])}


def collect_rng_states() -> dict[str, Any]:
    """Python's, NumPy's and torch's global generator states, as plain data (loadable with weights_only)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back the states `collect_rng_states` took."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, key, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["mps"])
