"""Ablations: train the baseline and each switched-off variant with the same seed, data and steps.

    python -m experiments.ablation --model gpt2_mini --steps 30 --data tinyshakespeare.txt --out runs/ablation
    python -m experiments.ablation --model ddpm --steps 300 --data ../data --out runs/ablation_ddpm
    tensorboard --logdir runs/ablation

Arguments after the known ones go to train.py for every variant (e.g. `--model.n_layer 2`). Writes into
--out: `ablation.json`, `ablation.md` (a table, and a note per variant on what its observers saw),
`ablation.png` (training-loss curves), `ablation_inside.png` (GPT2Mini: residual RMS and logit-lens loss by
block; DDPM: validation loss by noise level, a line per variant) and `ablation_attention.png` (the last
layer's attention maps) or `ablation_trajectories.png` (denoising trajectories), one row per variant.
TensorBoard's HPARAMS tab lists the variants with their switches and final losses.
"""

import argparse
import json
import sys
import traceback
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.diagnostics import explain, write_figures  # noqa: E402
from experiments.runs import CONFIGS, fit, read_scalars  # noqa: E402
from train import find_user_error  # noqa: E402

VARIANTS = {
    "gpt2_mini": {
        "baseline": [],
        "post_ln": ["--model.ln_style", "post"],
        "no_residual": ["--model.disable_residual", "true"],
        "no_attention": ["--model.disable_attention", "true"],
    },
    "ddpm": {
        "baseline": [],
        "no_residual": ["--model.disable_residual", "true"],
        "no_time_emb": ["--model.disable_time_emb", "true"],
        "cosine_schedule": ["--model.noise_schedule", "cosine"],
    },
}
DATA_ARG = {"gpt2_mini": "--data.data_path", "ddpm": "--data.data_dir"}
# The original plan's training losses after 30 steps (GPT2Mini on its own text, on Apple MPS).
PLAN_LOSS_30_STEPS = {"baseline": 2.3, "no_residual": 4.15, "post_ln": 3.64, "no_attention": 2.78}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(VARIANTS), default="gpt2_mini")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--data", help="text file (gpt2_mini) or MNIST root folder (ddpm); default: the config's")
    parser.add_argument("--out", default="runs/ablation", help="folder for the runs and the results")
    parser.add_argument("--variants", nargs="+", help="which variants to run (default: all of the model's)")
    args, passthrough = parser.parse_known_args(argv)
    known = VARIANTS[args.model]
    unknown = [v for v in args.variants or [] if v not in known]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; {args.model} has {', '.join(known)}")
    if args.steps <= 0:
        parser.error(f"--steps must be positive, got {args.steps}")
    return args, passthrough


def run(args: argparse.Namespace, passthrough: list[str]) -> dict[str, dict]:
    """Train every chosen variant; a variant that fails is recorded with its error and the rest go on."""
    out = Path(args.out)
    data = [DATA_ARG[args.model], args.data] if args.data else []
    results: dict[str, dict] = {}
    names = args.variants or list(VARIANTS[args.model])
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {args.model} {name}: {args.steps} steps", flush=True)
        try:
            result = fit(CONFIGS[args.model], out, name, args.steps, data + VARIANTS[args.model][name] + passthrough)
        except (Exception, SystemExit) as err:
            user_error = find_user_error(err)
            if user_error is None:
                traceback.print_exc()
            message = str(user_error or err) or type(err).__name__
            print(f"[{i}/{len(names)}] {name} failed: {message}", file=sys.stderr, flush=True)
            results[name] = {"error": message}
            continue
        results[name] = {"train_loss": result.train_loss, "val_loss": result.val_loss, "log_dir": result.log_dir}
    return results


def write_table(results: dict[str, dict], model: str, steps: int, path: Path) -> None:
    with_plan = model == "gpt2_mini"
    header = "| variant | train loss | val loss |" + (" plan (train loss, 30 steps) |" if with_plan else "")
    lines = [f"Ablation of {model}, {steps} steps each.", "", header, "|" + " --- |" * (header.count("|") - 1)]
    for name, r in results.items():
        plan = f" {PLAN_LOSS_30_STEPS.get(name, '')} |" if with_plan else ""
        if "error" in r:
            lines.append(f"| {name} | failed | {r['error']} |{plan}")
        else:
            lines.append(f"| {name} | {r['train_loss']:.4g} | {r['val_loss']:.4g} |{plan}")
    notes = explain(results, model)
    if notes:
        lines += ["", "Inside, at the last validation:", ""] + [f"- **{name}**: {note}" for name, note in notes.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_curves(results: dict[str, dict], model: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        if "log_dir" in r:
            steps, losses = read_scalars(r["log_dir"], "train_loss")
            ax.plot(steps, losses, label=f"{name} (val {r['val_loss']:.3g})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"{model}: ablations")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args, passthrough = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run(args, passthrough)
    (out / "ablation.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_table(results, args.model, args.steps, out / "ablation.md")
    plot_curves(results, args.model, out / "ablation.png")
    figures = write_figures(results, args.model, out)
    print((out / "ablation.md").read_text())
    written = [out / "ablation.json", out / "ablation.md", out / "ablation.png", *figures]
    print(f"Wrote {', '.join(map(str, written))}")
    failed = [name for name, r in results.items() if "error" in r]
    if failed:
        sys.exit(f"error: variant(s) failed: {', '.join(failed)} (see the messages above)")


if __name__ == "__main__":
    main()
