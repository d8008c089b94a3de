"""Break a trained model one part at a time and measure what it loses.

    python -m experiments.intervene runs/gpt2_mini/lightning_logs/version_0/checkpoints/last.ckpt --out runs/intervene
    python -m experiments.intervene GPT_CKPT --data ../shared/data/tinyshakespeare.txt --out runs/intervene_shakespeare
    python -m experiments.intervene DDPM_CKPT --data ../shared/data --out runs/intervene_ddpm

A GPT2Mini checkpoint: on the first `--windows` windows of the validation split of `--data` (the text it
was trained on; by default the lab notes the default config trains on), the validation loss and the
in-context score (`metrics.induction`: loss late in the context minus early) with nothing changed, then with
each head ablated, to zeros and to its mean output over those windows, and with each block's attention and
MLP sublayer zeroed (`Intervention`, through `GPT.trace`). A DDPM checkpoint: the time embedding or one U-Net
level's skip connection switched off for one band of noise levels at a time, while sampling, each scored by
the lab's Frechet distance and confidence (`experiments.intervene_ddpm`; `--data` is the folder holding
MNIST/raw/). Writes `intervene.json`, `intervene.md` and figures into --out.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from checkpoints import read_checkpoint  # noqa: E402
from checkpoints.format import written_by  # noqa: E402
from datamodules.char_data import CharDataModule, TilingWindows  # noqa: E402
from errors import UserInputError  # noqa: E402
from experiments.intervene_ddpm import ddpm_interventions, ddpm_markdown  # noqa: E402
from experiments.quality import reference_metric  # noqa: E402
from lightning_modules import DDPM, GPT2Mini  # noqa: E402
from lightning_modules.mnist_classifier import WEIGHTS  # noqa: E402
from lightning_modules.transformer import GPT, Intervention  # noqa: E402
from metrics.induction import in_context_positions, in_context_score, loss_by_position  # noqa: E402

MODES = ("zero", "mean")


def validation_windows(model: GPT2Mini, data: str | None, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` windows (inputs, targets) of the validation split of `data` (None: the lab notes),
    encoded with the checkpoint's own vocabulary, at the model's block size (shorter if the split is)."""
    dm = CharDataModule(data, block_size=model.hparams.block_size)
    text = dm.tokenizer.decode(dm.val_data.tolist())
    try:
        ids = torch.tensor(model.tokenizer.encode(text))
    except UserInputError as err:
        raise UserInputError(f"{dm.path} is not the text this checkpoint was trained on: {err}") from None
    windows = TilingWindows(ids, dm.block_size)
    pairs = [windows[i] for i in range(min(count, len(windows)))]
    return torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])


@torch.no_grad()
def evaluate(gpt: GPT, x: torch.Tensor, y: torch.Tensor, interventions: list[Intervention] = ()) -> dict[str, float]:
    """Validation loss and in-context score of `gpt` on windows (x, y), with `interventions` made."""
    losses = loss_by_position(gpt.trace(x, interventions=interventions).logits, y)
    return {"val_loss": losses.mean().item(), "in_context_score": in_context_score(losses)}


@torch.no_grad()
def head_means(gpt: GPT, x: torch.Tensor) -> list[torch.Tensor | None]:
    """Per layer, every head's mean output over the windows x, (n_head, head_size): what mean ablation puts in."""
    return [None if heads is None else heads.mean(dim=(0, 1)) for heads in gpt.trace(x).heads]


def ablate_head(layer: int, head: int, mode: str, means: list[torch.Tensor | None]) -> Intervention:
    """Head `head` of block `layer` set to zeros, or to its mean output (`head_means`)."""
    return Intervention(layer, "head", head, means[layer][head] if mode == "mean" else None)


def gpt_interventions(
    gpt: GPT, x: torch.Tensor, y: torch.Tensor, layers: list[int] | None = None, heads: list[int] | None = None
) -> dict:
    """Every head ablated (zero and mean) and every sublayer zeroed, one at a time, on the windows (x, y);
    only in `layers` and only `heads` where given."""
    config = gpt.config
    layers = list(range(config.n_layer)) if layers is None else layers
    heads = list(range(config.n_head)) if heads is None else heads
    for layer in layers:
        gpt.check_intervention(Intervention(layer, "block"))
    for head in heads if not config.disable_attention else []:
        gpt.check_intervention(Intervention(0, "head", head))
    means = head_means(gpt, x)
    ablated_heads = [
        {"layer": layer, "head": head, "mode": mode, **evaluate(gpt, x, y, [ablate_head(layer, head, mode, means)])}
        for layer in ([] if config.disable_attention else layers)
        for head in heads
        for mode in MODES
    ]
    parts = [part for part, off in (("attn", config.disable_attention), ("mlp", config.disable_mlp)) if not off]
    sublayers = [
        {"layer": layer, "part": part, **evaluate(gpt, x, y, [Intervention(layer, part)])}
        for layer in layers
        for part in parts
    ]
    early, late = in_context_positions(x.size(1))
    return {
        "kind": "gpt",
        "windows": x.size(0),
        "block_size": x.size(1),
        "positions": {"early": [early.start, early.stop], "late": [late.start, late.stop]},
        "baseline": evaluate(gpt, x, y),
        "heads": ablated_heads,
        "sublayers": sublayers,
    }


def head_grid(result: dict, mode: str, metric: str) -> torch.Tensor:
    """(n_layer, n_head) change of `metric` from the baseline when each head is ablated by `mode`."""
    rows = [r for r in result["heads"] if r["mode"] == mode]
    grid = torch.full((max(r["layer"] for r in rows) + 1, max(r["head"] for r in rows) + 1), float("nan"))
    for r in rows:
        grid[r["layer"], r["head"]] = r[metric] - result["baseline"][metric]
    return grid


def plot_heads(result: dict, path: Path) -> None:
    """Heatmaps, layer x head: what ablating each head does to the loss and to the in-context score."""
    metrics = {"val_loss": "validation loss", "in_context_score": "in-context score"}
    fig, axes = plt.subplots(len(MODES), len(metrics), figsize=(4.2 * len(metrics), 3.2 * len(MODES)), squeeze=False)
    for row, mode in enumerate(MODES):
        for col, (metric, label) in enumerate(metrics.items()):
            grid, ax = head_grid(result, mode, metric), axes[row][col]
            limit = max(grid.abs().nan_to_num().max().item(), 1e-6)
            image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit)
            for (i, j), value in zip(torch.cartesian_prod(*map(torch.arange, grid.shape)).tolist(), grid.flatten()):
                ax.text(j, i, f"{value:+.3f}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(grid.size(1)))
            ax.set_yticks(range(grid.size(0)))
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
            ax.set_title(f"change in {label}, {mode} ablation", fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def gpt_markdown(result: dict) -> str:
    base = result["baseline"]
    p = result["positions"]
    lines = [
        f"Interventions on {result['checkpoint']}, on {result['windows']} validation windows of "
        f"{result['block_size']} characters ({result['seconds']:.0f} s).",
        "",
        f"Baseline: validation loss {base['val_loss']:.4f}, in-context score {base['in_context_score']:+.4f} "
        f"(loss at positions {p['late'][0]}-{p['late'][1] - 1} minus positions {p['early'][0]}-{p['early'][1] - 1}).",
        "",
        "| layer | head | loss, zeroed | loss, mean | in-context, zeroed | in-context, mean |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_head = {}
    for r in result["heads"]:
        by_head.setdefault((r["layer"], r["head"]), {})[r["mode"]] = r
    for (layer, head), modes in by_head.items():
        deltas = [f"{modes[m][k] - base[k]:+.4f}" for k in ("val_loss", "in_context_score") for m in MODES]
        lines.append(f"| {layer} | {head} | " + " | ".join(deltas) + " |")
    lines += ["", "| layer | sublayer zeroed | change in loss | change in in-context score |"]
    lines += ["| --- | --- | --- | --- |"]
    for r in result["sublayers"]:
        lines.append(f"| {r['layer']} | {r['part']} | {r['val_loss'] - base['val_loss']:+.4f} | "
                     f"{r['in_context_score'] - base['in_context_score']:+.4f} |")  # fmt: skip
    if result["heads"]:
        worst = max((r for r in result["heads"] if r["mode"] == "mean"), key=lambda r: r["val_loss"])
        lines += ["", f"The head the model needs most: layer {worst['layer']}, head {worst['head']} (mean-ablated, "
                      f"the loss rises by {worst['val_loss'] - base['val_loss']:+.4f})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a GPT2Mini or DDPM checkpoint (.ckpt) written by train.py")
    parser.add_argument("--out", default="runs/intervene", help="folder for intervene.json, intervene.md and figures")
    parser.add_argument("--data", help="GPT: the text file it was trained on (default: the lab notes); "
                                       "DDPM: the folder holding MNIST/raw/ (default: data)")  # fmt: skip
    parser.add_argument("--windows", type=int, default=64, help="GPT: validation windows to measure on")
    parser.add_argument("--layers", type=int, nargs="+", help="GPT: only these layers (default: all)")
    parser.add_argument("--heads", type=int, nargs="+", help="GPT: only these heads of each layer (default: all)")
    parser.add_argument("--num_samples", type=int, default=256,
                        help="DDPM: samples per intervention (the judge's features are 128 wide: keep well above)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=20, help="DDPM: DDIM steps per sample")
    parser.add_argument("--precision", choices=["32", "bf16-mixed"], default="32", help="DDPM: as experiments.quality")
    parser.add_argument("--bands", type=int, default=3, help="DDPM: noise-level bands, equal slices of the timesteps")
    parser.add_argument("--seed", type=int, default=0, help="DDPM: the starting noise, the same for every intervention")
    parser.add_argument("--classifier", default=str(WEIGHTS), help="DDPM: the judge's weights (default: shipped)")
    args = parser.parse_args(argv)
    for name in ("windows", "steps", "bands"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    if args.num_samples < 2:
        parser.error(f"--num_samples must be at least 2 (a Frechet distance needs a spread), got {args.num_samples}")
    return args


def model_kind(path: str) -> str:
    """Which model wrote the checkpoint, "GPT2Mini" or "DDPM" (its stamp, or its settings when it has none)."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters", {})
    kind = written_by(checkpoint) or ("GPT2Mini" if "n_layer" in hparams else "DDPM" if "timesteps" in hparams else "")
    if kind not in ("GPT2Mini", "DDPM"):
        raise UserInputError(
            f"{path} is a {kind or 'unknown'} checkpoint; interventions take a GPT2Mini or a DDPM one."
        )
    return kind


def run(args: argparse.Namespace) -> dict:
    kind, start = model_kind(args.checkpoint), time.perf_counter()
    out = Path(args.out)
    data_is_folder = args.data is not None and Path(args.data).is_dir()
    if kind == "GPT2Mini":
        if data_is_folder:
            raise UserInputError(
                f"{args.checkpoint} is a GPT2Mini (text) checkpoint, so --data must be the text file it was trained "
                f"on; {args.data} is a folder (MNIST is for DDPM checkpoints)."
            )
        model = GPT2Mini.load_from_checkpoint(args.checkpoint, map_location="cpu").eval()
        x, y = validation_windows(model, args.data, args.windows)
        result = gpt_interventions(model.gpt, x, y, args.layers, args.heads)
    else:
        if args.data is not None and not data_is_folder:
            raise UserInputError(
                f"{args.checkpoint} is a DDPM checkpoint, so --data must be the folder holding MNIST/raw/; "
                f"{args.data} is not a folder (a text file is for GPT2Mini checkpoints)."
            )
        model = DDPM.load_from_checkpoint(args.checkpoint, map_location="cpu")
        metric = reference_metric(args.data or "data", args.classifier)
        result = ddpm_interventions(
            model, metric, out, args.num_samples, args.steps, args.bands, args.seed, args.precision
        )
    result["checkpoint"] = str(args.checkpoint)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args)
    except UserInputError as err:
        sys.exit(f"error: {err}")
    (out / "intervene.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result["kind"] == "gpt":
        plot_heads(result, out / "intervene.png")
        markdown = gpt_markdown(result)
    else:
        markdown = ddpm_markdown(result)
    (out / "intervene.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"Wrote {out / 'intervene.json'}, {out / 'intervene.md'} and the figures beside them.")


if __name__ == "__main__":
    main()
