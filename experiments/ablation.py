"""Ablations: train the baseline and each variant with the same seeds, data and steps.

    python -m experiments.ablation --preset gpt2_mini --steps 30 --data tinyshakespeare.txt --out runs/ablation
    python -m experiments.ablation --preset ddpm --steps 300 --data ../data --out runs/ablation_ddpm
    python -m experiments.ablation --preset gpt2_to_llama --data tinyshakespeare.txt --out runs/gpt2_to_llama
    tensorboard --logdir runs/ablation

A preset is a model, its config and a list of variants: `gpt2_mini` and `ddpm` switch parts off;
`gpt2_to_llama` turns GPT-2 into a Llama-style model one change at a time on tiny Shakespeare at nanoGPT's
settings (2000 steps, three seeds each by default); `induction` trains attention-only models of one and two
layers and the default model, three seeds each, for `experiments.induction` to read. `--model` is another
name for `--preset`. DDPM variants are also scored on their samples (`--quality_samples`, see
`experiments.quality`): their losses do not compare across noise schedules, their samples do. Arguments
after the known ones go to train.py for every variant (e.g. `--model.n_layer 2`). Writes into --out:
`ablation.json`, `ablation.md` (a table, and a note per variant on what its observers saw), `ablation.png`
(loss curves, the mean over seeds), `ablation_inside.png` (GPT2Mini: residual RMS and logit-lens loss by
block; DDPM: validation loss by noise level, a line per variant) and `ablation_attention.png` (the last
layer's attention maps) or `ablation_trajectories.png` (denoising trajectories), one row per variant.
TensorBoard's HPARAMS tab lists the runs with their switches and final losses.
"""

import argparse
import json
import statistics
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import quality  # noqa: E402
from experiments.diagnostics import explain, write_figures  # noqa: E402
from experiments.run_log import RunLog  # noqa: E402
from experiments.runs import CONFIGS, RunResult, fit  # noqa: E402
from lightning_modules import DDPM  # noqa: E402
from lightning_modules.mnist_classifier import WEIGHTS  # noqa: E402
from metrics import SampleQuality, draw_samples  # noqa: E402
from train import find_user_error  # noqa: E402


@dataclass(frozen=True)
class Preset:
    """Which model to train with which config, its variants (train.py arguments each), and the defaults."""

    model: str
    configs: tuple[Path, ...]
    variants: dict[str, list[str]]
    steps: int = 30
    seeds: tuple[int | None, ...] = (None,)  # None: the config's seed
    curve: str = "train_loss"  # the scalar ablation.png draws
    args: tuple[str, ...] = ()  # train.py arguments every variant gets before its own


LLAMA = ["--model.norm", "rmsnorm", "--model.pos_emb", "rope", "--model.mlp", "swiglu", "--model.n_kv_head", "2",
         "--model.tie_weights", "false"]  # fmt: skip
PRESETS = {
    "gpt2_mini": Preset(
        "gpt2_mini",
        CONFIGS["gpt2_mini"],
        {
            "baseline": [],
            "post_ln": ["--model.ln_style", "post"],
            "no_residual": ["--model.disable_residual", "true"],
            "no_attention": ["--model.disable_attention", "true"],
        },
    ),
    "ddpm": Preset(
        "ddpm",
        CONFIGS["ddpm"],
        {
            "baseline": [],
            "no_residual": ["--model.disable_residual", "true"],
            "no_time_emb": ["--model.disable_time_emb", "true"],
            "cosine_schedule": ["--model.noise_schedule", "cosine"],
        },
    ),
    "gpt2_to_llama": Preset(
        "gpt2_mini",
        CONFIGS["gpt2_mini_shakespeare"],
        {
            "baseline": [],
            "rmsnorm": ["--model.norm", "rmsnorm"],
            "rope": ["--model.pos_emb", "rope"],
            "swiglu": ["--model.mlp", "swiglu"],
            "gqa": ["--model.n_kv_head", "2"],
            "untied": ["--model.tie_weights", "false"],
            "llama": LLAMA,
        },
        steps=2000,
        seeds=(1337, 1, 2),
        curve="val_loss",
        args=("--trainer.val_check_interval", "250"),  # a validation curve, over the whole split each time
    ),
    "induction": Preset(
        "gpt2_mini",
        CONFIGS["gpt2_mini"],
        {
            "attn_only_1l": ["--model.n_layer", "1", "--model.disable_mlp", "true"],
            "attn_only_2l": ["--model.n_layer", "2", "--model.disable_mlp", "true"],
            "baseline": [],
        },
        steps=800,
        seeds=(1337, 1, 2),
        curve="val_loss",
        # Rotary embeddings: attention-only models learn positions from them far sooner than from learned vectors.
        args=("--trainer.val_check_interval", "50", "--trainer.limit_val_batches", "8", "--model.dropout", "0.0",
              "--model.learning_rate", "2e-3", "--model.pos_emb", "rope", "--data.block_size", "128"),  # fmt: skip
    ),
}
DATA_ARG = {"gpt2_mini": "--data.data_path", "ddpm": "--data.data_dir"}
# The original plan's training losses after 30 steps (GPT2Mini on its own text, on Apple MPS).
PLAN_LOSS_30_STEPS = {"baseline": 2.3, "no_residual": 4.15, "post_ln": 3.64, "no_attention": 2.78}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", "--model", choices=sorted(PRESETS), default="gpt2_mini")
    parser.add_argument("--steps", type=int, help="training steps of each run (default: the preset's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="run every variant once per seed (default: the preset's)")
    parser.add_argument("--data", help="text file (gpt2_mini) or MNIST root folder (ddpm); default: the config's")
    parser.add_argument("--out", default="runs/ablation", help="folder for the runs and the results")
    parser.add_argument("--variants", nargs="+", help="which variants to run (default: all of the preset's)")
    parser.add_argument("--quality_samples", type=int, default=1000,
                        help="DDPM: score each variant on this many 50-step DDIM samples (0: do not)")  # fmt: skip
    parser.add_argument("--classifier", default=str(WEIGHTS), help="DDPM: the judge's weights (default: shipped)")
    args, passthrough = parser.parse_known_args(argv)
    preset = PRESETS[args.preset]
    unknown = [v for v in args.variants or [] if v not in preset.variants]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; {args.preset} has {', '.join(preset.variants)}")
    args.steps = preset.steps if args.steps is None else args.steps
    if args.steps <= 0:
        parser.error(f"--steps must be positive, got {args.steps}")
    if args.quality_samples == 1 or args.quality_samples < 0:
        parser.error(f"--quality_samples must be 0 (off) or at least 2, got {args.quality_samples}")
    args.seeds = args.seeds or list(preset.seeds)
    return args, passthrough


def run(args: argparse.Namespace, passthrough: list[str]) -> dict[str, dict]:
    """Train every chosen variant once per seed; a variant that fails is recorded with its error and the rest
    go on. A variant's numbers are the mean over its seeds, with each run's kept under "runs"."""
    preset = PRESETS[args.preset]
    out = Path(args.out)
    data = [DATA_ARG[preset.model], args.data] if args.data else []
    results: dict[str, dict] = {}
    judge: SampleQuality | None = None  # the DDPM's, made at the first run, which knows where MNIST is
    names = args.variants or list(preset.variants)
    jobs = [(name, seed) for name in names for seed in args.seeds]
    for i, (name, seed) in enumerate(jobs, 1):
        if "error" in results.get(name, {}):
            continue  # failed with another seed: it would fail again
        run_name = name if len(args.seeds) == 1 else f"{name}/seed_{seed}"
        seed_args = [] if seed is None else ["--seed_everything", str(seed)]
        print(f"[{i}/{len(jobs)}] {args.preset} {run_name}: {args.steps} steps", flush=True)
        try:
            result = fit(preset.configs, out, run_name, args.steps,
                         [*preset.args, *data, *seed_args, *preset.variants[name], *passthrough])  # fmt: skip
        except (Exception, SystemExit) as err:
            user_error = find_user_error(err)
            if user_error is None:
                traceback.print_exc()
            message = str(user_error or err) or type(err).__name__
            print(f"[{i}/{len(jobs)}] {name} failed: {message}", file=sys.stderr, flush=True)
            results[name] = {"error": message}
            continue
        described = _describe(result, seed, preset.model)
        if preset.model == "ddpm" and args.quality_samples:
            judge = judge or quality.reference_metric(str(result.datamodule.data_dir), args.classifier)
            described["quality"] = _sample_quality(result.model, judge, args.quality_samples)
        results.setdefault(name, {"runs": []})["runs"].append(described)
    return {name: _summarise(r) if "runs" in r else r for name, r in results.items()}


def _describe(result: RunResult, seed: int | None, model: str) -> dict:
    """One run's numbers: losses, size, training throughput and, for GPT2Mini, what the KV cache costs."""
    run = {
        "seed": seed,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "log_dir": result.log_dir,
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "per_s": result.items_per_s,
        "wall_time_s": round(result.wall_time_s, 1),
    }
    if model == "gpt2_mini":
        run["kv_cache_bytes_per_token"] = result.model.gpt.kv_cache_bytes_per_token()
    return run


def _sample_quality(model: DDPM, judge: SampleQuality, num_samples: int) -> dict[str, float]:
    """The trained (EMA) model's samples scored by the lab's classifier: 50-step DDIM from seed 0."""
    return judge.score(*draw_samples(model, num_samples, steps=50, seed=0))


def _summarise(variant: dict) -> dict:
    """The mean over seeds (with the standard deviation where there are several), the first run's log."""
    runs = variant["runs"]
    summary = {
        "train_loss": statistics.fmean(r["train_loss"] for r in runs),
        "val_loss": statistics.fmean(r["val_loss"] for r in runs),
        "val_loss_sd": statistics.stdev(r["val_loss"] for r in runs) if len(runs) > 1 else None,
        "per_s": statistics.median(r["per_s"] for r in runs),
        "log_dir": runs[0]["log_dir"],
    }
    for same in ("parameters", "kv_cache_bytes_per_token"):
        if same in runs[0]:
            summary[same] = runs[0][same]
    if "quality" in runs[0]:
        scores = [r["quality"] for r in runs]
        summary["quality"] = {k: statistics.fmean(q[k] for q in scores) for k in scores[0]}
        summary["quality"]["num_samples"] = scores[0]["num_samples"]  # the same for every seed; a count
    return {**summary, "runs": runs}


def write_table(results: dict[str, dict], preset: str, steps: int, path: Path) -> None:
    model = PRESETS[preset].model
    seeds = max((len(r["runs"]) for r in results.values() if "runs" in r), default=1)
    with_plan = preset == "gpt2_mini"
    unit = "tokens/s" if model == "gpt2_mini" else "images/s"
    scored = next((r["quality"] for r in results.values() if "quality" in r), None)
    columns = ["variant"]
    if scored is not None:  # what the samples look like comes first: losses of DDPM variants do not compare
        columns += [f"Frechet distance ({scored['num_samples']:,} samples)", "confidence", "class balance"]
    columns += ["train loss", "val loss" + (f" (mean ± sd of {seeds} seeds)" if seeds > 1 else "")]
    columns += ["val vs baseline"] * (seeds > 1 and "baseline" in results) + ["parameters", f"{unit} (training)"]
    columns += ["KV cache bytes/token"] * (model == "gpt2_mini") + ["plan (train loss, 30 steps)"] * with_plan
    lines = [
        f"Ablation {preset} ({model}), {steps} steps each.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + " --- |" * len(columns),
    ]
    base = results.get("baseline", {}).get("val_loss")
    for name, r in results.items():
        plan = [str(PLAN_LOSS_30_STEPS.get(name, ""))] * with_plan
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |" + " |" * (len(columns) - 2))
            continue
        cells = [name]
        if scored is not None:
            q = r["quality"]
            cells += [f"{q['fid']:.2f}", f"{q['confidence']:.3f}", f"{q['class_balance']:.3f}"]
        cells += [f"{r['train_loss']:.4g}", f"{r['val_loss']:.4g}"]
        if r["val_loss_sd"] is not None:
            cells[-1] += f" ± {r['val_loss_sd']:.3f}"
        if "val vs baseline" in columns:
            cells.append(f"{r['val_loss'] - base:+.3f}" if base is not None else "")
        cells += [f"{r['parameters']:,}", f"{r['per_s']:,.0f}"]
        if model == "gpt2_mini":
            cells.append(f"{r['kv_cache_bytes_per_token']:,}")
        lines.append("| " + " | ".join(cells + plan) + " |")
    notes = explain(results, model)
    if notes:
        lines += ["", "Inside, at the last validation:", ""] + [f"- **{name}**: {note}" for name, note in notes.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_curves(results: dict[str, dict], preset: str, path: Path) -> None:
    """One line per variant: the preset's curve (training or validation loss), averaged over seeds."""
    tag = PRESETS[preset].curve
    trained = {name: r for name, r in results.items() if "runs" in r}
    seeds = max((len(r["runs"]) for r in trained.values()), default=1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in trained.items():
        curves = [dict(zip(*RunLog(run["log_dir"]).scalars(tag))) for run in r["runs"]]
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        mean = [statistics.fmean(c[s] for c in curves) for s in steps]
        label = f"{name} (val {r['val_loss']:.3g}" + (f" ± {r['val_loss_sd']:.3f})" if r["val_loss_sd"] else ")")
        ax.plot(steps, mean, label=label, marker="o" if len(steps) < 30 else None, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel(tag.replace("_", " ").replace("val ", "validation "))
    ax.set_title(f"{preset}: ablations" + (f", mean of {seeds} seeds" if seeds > 1 else ""))
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
    write_table(results, args.preset, args.steps, out / "ablation.md")
    plot_curves(results, args.preset, out / "ablation.png")
    figures = write_figures(results, PRESETS[args.preset].model, out)
    print((out / "ablation.md").read_text())
    written = [out / "ablation.json", out / "ablation.md", out / "ablation.png", *figures]
    print(f"Wrote {', '.join(map(str, written))}")
    failed = [name for name, r in results.items() if "error" in r]
    if failed:
        sys.exit(f"error: variant(s) failed: {', '.join(failed)} (see the messages above)")


if __name__ == "__main__":
    main()
