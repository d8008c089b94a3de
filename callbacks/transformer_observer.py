"""Looks inside GPT2Mini at every validation: attention maps, the residual stream, and the logit lens."""

import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from torchmetrics import MeanMetric

from callbacks.periodic_sampler import PeriodicSampler
from callbacks.tags import (
    ATTENTION,
    ATTENTION_ENTROPY,
    IN_CONTEXT_LOSS_BY_POSITION,
    IN_CONTEXT_SCORE,
    INDUCTION_SCORE,
    LOGIT_LENS,
    RESIDUAL_RMS,
)
from errors import UserInputError
from metrics.induction import head_induction_scores, in_context_positions, in_context_score, loss_by_position

if TYPE_CHECKING:
    from lightning_modules.transformer import Trace

LABELLED_LENGTH = 24  # probes up to this many characters get one on every row and column of the maps


@runtime_checkable
class TraceableNetwork(Protocol):
    """What this callback needs of the model's network (`GPT2Mini.gpt`): a forward pass that keeps its
    intermediate results, and the decoder that turns a hidden state into logits."""

    def trace(self, idx: torch.Tensor, attention: bool = False) -> "Trace":
        ...

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        ...


class TransformerObserver(PeriodicSampler):
    """At every validation, logs what the network does inside, not only how well it predicts.

    On the first `windows` validation windows (all of them when None; they cost one more forward pass each):
    - `residual_rms/block_{i}`: the root mean square of the residual stream after block i. Pre-LN lets it
      grow with depth, Post-LN normalises it after every block, and without residuals it has nothing to
      grow from.
    - `logit_lens/block_{i}`: the loss when the hidden state after block i is decoded by the final
      LayerNorm and the tied head, as if the model stopped there. The last block's is the model's own loss
      on those windows.
    - `in_context/score`: the loss late in the context minus early in it (`metrics.induction`: positions
      [7T/8, T) against [T/16, T/8) of block size T); negative when more context helps. The image
      `in_context/loss_by_position` draws the loss at every position.

    On a fixed probe (`probe`, or the first `probe_length` characters of the validation text), the same at
    every validation and in every run so that pictures can be compared:
    - `attention/layer_{i}`: each head's attention weights (rows: queries, columns: keys), from the
      written-out softmax, so exactly what the model applies.
    - `attention_entropy/layer_{i}/head_{j}`: how spread out each head's attention is, in nats, averaged
      over the probe's positions (a head that always looks at one position scores 0).

    On `induction_batch` sequences of block_size / 2 random tokens, each repeated once (fixed, as the probe):
    - `induction_score/layer_{i}/head_{j}`: the attention each head pays, in the second copy, to the token
      after the same token's first occurrence (Olsson et al., 2022): near 1 for an induction head.

    Only rank zero observes, never during the sanity check; `attention_maps: false` leaves out the figures
    (the attention maps and the loss by position).
    """

    def __init__(
        self,
        probe: str | None = None,
        probe_length: int = 64,
        windows: int | None = 32,
        attention_maps: bool = True,
        induction_batch: int = 8,
    ) -> None:
        super().__init__(every_n_steps=None)
        if probe_length <= 0 or induction_batch <= 0 or (windows is not None and windows <= 0):
            raise UserInputError(
                "TransformerObserver probe_length, windows and induction_batch must be positive, got "
                f"{probe_length}, {windows} and {induction_batch}."
            )
        self.induction_batch = induction_batch
        self.probe = probe
        self.probe_length = probe_length
        self.windows = windows
        self._seen = 0  # windows observed in this validation
        self.attention_maps = attention_maps
        self._probe_ids: torch.Tensor | None = None
        self._square: list[MeanMetric] = []  # per block: the mean square of the residual stream
        self._lens: list[MeanMetric] = []
        self._position_loss: list[torch.Tensor] = []  # per batch of windows: (T,) the loss at each position, summed
        self._position_windows = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        network = getattr(pl_module, "gpt", None)
        if not isinstance(network, TraceableNetwork):
            name = type(pl_module).__name__
            raise TypeError(f"TransformerObserver needs a model whose .gpt has trace() and unembed(); {name} has none.")
        if self.probe is not None:
            ids = pl_module.tokenizer.encode(self.probe)  # a UserInputError names unknown characters
        else:
            ids = trainer.datamodule.val_data[: self.probe_length].tolist()
        self._probe_ids = torch.tensor([ids[: pl_module.hparams.block_size]])
        n_layer = pl_module.hparams.n_layer
        self._square = [MeanMetric(sync_on_compute=False) for _ in range(n_layer)]  # rank zero alone: no all-gather
        self._lens = [MeanMetric(sync_on_compute=False) for _ in range(n_layer)]

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._seen = 0
        self._position_loss, self._position_windows = [], 0
        for metric in (*self._square, *self._lens):
            metric.reset()

    @torch.no_grad()
    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        x, y = batch
        if self.windows is not None:
            x, y = x[: self.windows - self._seen], y[: self.windows - self._seen]
        if x.size(0) == 0:
            return
        self._seen += x.size(0)
        trace = pl_module.gpt.trace(x)
        for h, square, lens in zip(trace.hidden_states, self._square, self._lens):
            square.update(h.float().pow(2).mean().cpu(), weight=y.numel())
            logits = pl_module.gpt.unembed(h)
            lens.update(F.cross_entropy(logits.flatten(0, 1).float(), y.flatten()).cpu(), weight=y.numel())
        self._position_loss.append(loss_by_position(trace.logits, y).cpu() * x.size(0))
        self._position_windows += x.size(0)

    def measurements(self) -> dict[str, float]:
        """`residual_rms/block_{i}`, `logit_lens/block_{i}` and `in_context/score` over the windows observed in
        this validation."""
        metrics = {}
        for i, (square, lens) in enumerate(zip(self._square, self._lens)):
            if square.update_count:
                metrics[f"{RESIDUAL_RMS}{i}"] = square.compute().sqrt().item()
                metrics[f"{LOGIT_LENS}{i}"] = lens.compute().item()
        if self._position_windows:
            metrics[IN_CONTEXT_SCORE] = in_context_score(self.loss_by_position())
        return metrics

    def loss_by_position(self) -> torch.Tensor:
        """(T,) the loss at each position of the windows observed in this validation."""
        return torch.stack(self._position_loss).sum(dim=0) / self._position_windows

    @torch.no_grad()
    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = self.measurements()
        was_training = pl_module.training
        pl_module.eval()
        try:
            trace = pl_module.gpt.trace(self._probe_ids.to(pl_module.device), attention=True)
            hp = pl_module.hparams
            induction = head_induction_scores(pl_module.gpt, hp.vocab_size, hp.block_size // 2, self.induction_batch)
        finally:
            pl_module.train(was_training)
        for i, layer in enumerate(induction.tolist()):
            metrics |= {f"{INDUCTION_SCORE}{i}/head_{j}": score for j, score in enumerate(layer) if not math.isnan(score)}
        chars = [_label(c) for c in pl_module.tokenizer.decode(self._probe_ids[0].tolist())]
        for i, weights in enumerate(trace.attention):
            if weights is None:  # attention switched off in this block
                continue
            weights = weights[0].float().cpu()  # (n_head, T, T)
            for j, entropy in enumerate(attention_entropy(weights)):
                metrics[f"{ATTENTION_ENTROPY}{i}/head_{j}"] = entropy.item()
            if self.attention_maps and isinstance(trainer.logger, TensorBoardLogger):
                figure = attention_figure(weights, chars, f"layer {i}, step {trainer.global_step}")
                trainer.logger.experiment.add_figure(f"{ATTENTION}{i}", figure, trainer.global_step)
        if self.attention_maps and self._position_windows and isinstance(trainer.logger, TensorBoardLogger):
            figure = loss_by_position_figure(self.loss_by_position(), f"step {trainer.global_step}")
            trainer.logger.experiment.add_figure(IN_CONTEXT_LOSS_BY_POSITION, figure, trainer.global_step)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """(n_head, T, T) attention weights -> (n_head,) mean entropy of a query's attention, in nats."""
    entropy = -(weights * weights.clamp_min(1e-12).log()).sum(dim=-1)
    return entropy.mean(dim=-1)


def attention_figure(weights: torch.Tensor, chars: list[str], title: str) -> Figure:
    """The heads' maps side by side, rows = queries and columns = keys.

    One image on one axes, a blank gap between heads: it draws in a fraction of the time a grid of axes
    takes, which matters at every validation. Up to `LABELLED_LENGTH` characters, each row and column is
    labelled with its character; a longer probe is written out under the maps instead.
    """
    n_head, T, _ = weights.shape
    gap = max(T // 8, 1)
    starts = [j * (T + gap) for j in range(n_head)]
    image = torch.full((T, starts[-1] + T), float("nan"))  # NaN: drawn as background
    for j, start in enumerate(starts):
        image[:, start : start + T] = weights[j]
    fig = Figure(figsize=(min(2.4 * n_head, 12), 3.0))  # not pyplot's: no window, no global state
    ax = fig.add_axes((0.03, 0.1, 0.94, 0.72))
    ax.imshow(image, cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=1), interpolation="nearest")
    ax.set_frame_on(False)
    for j, start in enumerate(starts):
        ax.text(start + (T - 1) / 2, -1, f"head {j}", ha="center", va="bottom", fontsize=8)
    if T <= LABELLED_LENGTH:
        ax.set_xticks([start + i for start in starts for i in range(T)], chars * n_head, fontsize=6)
        ax.set_yticks(range(T), chars, fontsize=6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        fig.text(0.5, 0.02, "probe: " + "".join(chars), ha="center", fontsize=6, family="monospace")
    fig.suptitle(f"attention, {title} (rows: queries, columns: keys)", fontsize=9)
    return fig


def loss_by_position_figure(losses: torch.Tensor, title: str) -> Figure:
    """Validation loss against position in the context (log x), with the in-context score's two bands shaded."""
    fig = Figure(figsize=(5.0, 3.0), dpi=80)  # small and plain: it is drawn at every validation
    ax = fig.add_axes((0.13, 0.16, 0.83, 0.7))
    positions = torch.arange(1, losses.numel() + 1)
    for band, colour in zip(in_context_positions(losses.numel()), ("tab:blue", "tab:orange")):
        ax.axvspan(band.start + 1, band.stop, color=colour, alpha=0.15)
    ax.plot(positions, losses, color="black", linewidth=1)
    ax.set_xscale("log")
    ticks = [2**i for i in range(losses.numel().bit_length())]
    ax.set_xticks(ticks, [str(tick) for tick in ticks])  # plain labels: drawing 10^k in mathtext is slow
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("position in the context")
    ax.set_ylabel("validation loss")
    score = in_context_score(losses)
    ax.set_title(f"loss by position, {title}: in-context score {score:+.3f} (late - early band)", fontsize=8)
    return fig


def _label(char: str) -> str:
    """A character as an axis label: spaces and newlines made visible."""
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(char, char)
