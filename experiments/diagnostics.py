"""What an ablation's variants look like inside: their observers' last readings, side by side.

Each variant's run logs the observation callbacks' scalars and images to TensorBoard (`TransformerObserver`,
`DiffusionObserver`); this reads the last of each back and draws them per variant, and says in a sentence
or two how each variant differs from the baseline, with the numbers.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from callbacks.tags import (  # noqa: E402
    ATTENTION,
    ATTENTION_ENTROPY,
    LOGIT_LENS,
    RESIDUAL_RMS,
    TRAJECTORY,
    UPDATE_RATIO,
    VAL_LOSS_BY_T,
)
from experiments.run_log import RunLog  # noqa: E402

# Why each variant differs, the part the numbers cannot say (the numbers follow it in `explain`).
MECHANISM = {
    "gpt2_mini": {
        "post_ln": "LayerNorm after each residual addition resets the stream's scale at every block",
        "no_residual": "each block's output replaces its input, so nothing carries the embeddings past a block",
        "no_attention": "MLP-only blocks see one character at a time, so at best the model learns which character follows which",
    },
    "ddpm": {
        "no_residual": "every ResBlock must carry its input through two convolutions instead of adding a correction to it",
        "no_time_emb": "the network is never told t and must guess the noise level from the image",
        "cosine_schedule": "the same t means less noise under the cosine schedule, so compare the two level by level",
    },
}


def read(results: dict[str, dict]) -> dict[str, RunLog]:
    """The logs of every variant that trained."""
    return {name: RunLog(r["log_dir"]) for name, r in results.items() if "log_dir" in r}


UPDATE_RATIO_PANEL = (UPDATE_RATIO, "part", "update / weight, one step (log)")


def plot_lines(readings: dict[str, RunLog], panels: list[tuple[str, str, str]], title: str, path: Path) -> bool:
    """One panel per (scalar prefix, x label, y label), a line per variant; False if nothing was logged.

    A y label that ends in "(log)" gets a logarithmic axis.
    """
    if not any(r.series(prefix) for r in readings.values() for prefix, _, _ in panels):
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (prefix, xlabel, ylabel) in zip(axes[0], panels):
        if ylabel.endswith("(log)"):
            ax.set_yscale("log")
        for name, r in readings.items():
            series = r.series(prefix)
            ax.plot(list(series), list(series.values()), marker="o", label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=45 if len(series) > 5 else 0)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_images(readings: dict[str, RunLog], tag: str, title: str, path: Path) -> bool:
    """Each variant's last `tag` image: wide ones one above the other, others side by side, at least 3
    inches wide each. False if no variant logged one."""
    images = {name: image for name, r in readings.items() if (image := r.image(tag)) is not None}
    if not images:
        return False
    height, width = next(iter(images.values())).shape[:2]
    inches = max(width / 100, 3.0)
    size = (inches, inches * height / width + 0.3)
    rows, cols = (len(images), 1) if width > 2 * height else (1, len(images))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows + 0.4), squeeze=False)
    for ax, (name, image) in zip(axes.flat, images.items()):
        ax.imshow(image)
        ax.set_title(name, fontsize=10, loc="left")
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_figures(results: dict[str, dict], model: str, out: Path) -> list[Path]:
    """The diagnostics figures of an ablation into `out`; returns the paths written."""
    readings = read(results)
    written = []
    if model == "gpt2_mini":
        panels = [
            (RESIDUAL_RMS, "block", "residual stream RMS"),
            (LOGIT_LENS, "block", "logit-lens loss"),
            UPDATE_RATIO_PANEL,
        ]
        if plot_lines(readings, panels, "Inside each variant at its last validation", out / "ablation_inside.png"):
            written.append(out / "ablation_inside.png")
        layer = max((len(r.series(RESIDUAL_RMS)) for r in readings.values()), default=1) - 1
        title = f"Last layer's attention (layer {layer})"
        if plot_images(readings, f"{ATTENTION}{layer}", title, out / "ablation_attention.png"):
            written.append(out / "ablation_attention.png")
    else:
        panels = [(VAL_LOSS_BY_T, "timesteps t", "validation loss"), UPDATE_RATIO_PANEL]
        if plot_lines(readings, panels, "Validation loss by noise level, last validation", out / "ablation_inside.png"):
            written.append(out / "ablation_inside.png")
        title = "Denoising trajectories: x_t above predicted x0, left to right as noise is removed"
        if plot_images(readings, TRAJECTORY, title, out / "ablation_trajectories.png"):
            written.append(out / "ablation_trajectories.png")
    return written


def explain(results: dict[str, dict], model: str) -> dict[str, str]:
    """One or two sentences per variant: how it differs from the baseline inside, with the numbers."""
    readings = read(results)
    base = readings.get("baseline")
    describe = _transformer_note if model == "gpt2_mini" else _diffusion_note
    notes = {}
    for name, r in readings.items():
        compared = base if name != "baseline" else None
        said = describe(r, compared)
        if not said:
            continue
        if compared is not None:
            said += _update_ratio_note(r, compared)
        reason = MECHANISM[model].get(name)
        notes[name] = (f"{reason[0].upper()}{reason[1:]}: " if reason else "") + said + "."
    return notes


def _transformer_note(r: RunLog, base: RunLog | None) -> str:
    """Residual RMS and logit lens by block, and the last layer's attention entropy, beside the baseline's."""
    rms, lens = r.series(RESIDUAL_RMS), r.series(LOGIT_LENS)
    if not rms:
        return ""
    said = f"residual RMS by block {_listed(rms)}, logit-lens loss by block {_listed(lens)}"
    if base is not None:
        base_rms, base_lens = base.series(RESIDUAL_RMS), base.series(LOGIT_LENS)
        said += f" (baseline: {_listed(base_rms)} and {_listed(base_lens)})"
    layer = f"{ATTENTION_ENTROPY}{len(rms) - 1}/"
    entropy = r.series(layer)
    if entropy:
        said += f"; the last layer's heads spread their attention over {_g(_mean(entropy))} nats on average"
        base_entropy = base.series(layer) if base is not None else {}
        if base_entropy:
            said += f" (baseline: {_g(_mean(base_entropy))})"
    return said


def _diffusion_note(r: RunLog, base: RunLog | None) -> str:
    """The loss at the least and most noise, and the noise level where it is furthest from the baseline's."""
    by_t = r.series(VAL_LOSS_BY_T)
    if not by_t:
        return ""
    least, most = list(by_t)[0], list(by_t)[-1]
    said = f"validation loss {_g(by_t[least])} at t {least} (least noise), {_g(by_t[most])} at t {most}"
    base_t = base.series(VAL_LOSS_BY_T) if base is not None else {}
    ratios = {t: by_t[t] / base_t[t] for t in by_t.keys() & base_t.keys()}
    if ratios:
        furthest = max(ratios, key=lambda t: abs(ratios[t] - 1))
        said += f"; furthest from the baseline at t {furthest}, {ratios[furthest]:.2f}x its loss"
    return said


def _update_ratio_note(r: RunLog, base: RunLog) -> str:
    """Where one optimizer step moves the weights most differently from the baseline's, by a factor."""
    ours, theirs = r.series(UPDATE_RATIO), base.series(UPDATE_RATIO)
    factors = {part: ours[part] / theirs[part] for part in ours.keys() & theirs.keys() if theirs[part] > 0}
    if not factors:
        return ""
    part = max(factors, key=lambda p: abs(math.log(factors[p])) if factors[p] > 0 else math.inf)
    return f". A step moves {part} by {ours[part]:.1e} of its size (baseline: {theirs[part]:.1e})"


def _mean(series: dict[str, float]) -> float:
    return sum(series.values()) / len(series)


def _listed(series: dict[str, float]) -> str:
    return " / ".join(_g(v) for v in series.values())


def _g(value: float) -> str:
    return f"{value:.3g}"
