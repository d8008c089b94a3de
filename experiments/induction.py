"""The induction experiment: watch induction heads form during training, then knock them out.

    python -m experiments.ablation --preset induction --data ../shared/data/tinyshakespeare.txt --out runs/induction
    python -m experiments.induction runs/induction

The preset trains attention-only models of one and two layers (`--model.disable_mlp true`) and the default
model, over seeds; their observers log the induction score of every head and the in-context score at every
validation (`callbacks.TransformerObserver`). This reads the runs back (ablation.json, their TensorBoard logs
and last.ckpt files) and, for each run:
- finds the phase change: the validation interval over which the largest induction score rose most, if
  a head ever scored twice what even attention scores (otherwise none formed);
- in the trained model, mean-ablates its `--top` heads with the highest induction scores together, and,
  for comparison, every other set of as many heads, on `--windows` validation windows of the same text,
  and reports what each does to the in-context score and the loss.
Writes induction.json, induction.md and induction.png into the same folder.
"""

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import matplotlib
import torch
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from callbacks.tags import IN_CONTEXT_SCORE, INDUCTION_SCORE  # noqa: E402
from errors import UserInputError  # noqa: E402
from experiments.intervene import ablate_head, evaluate, head_means, validation_windows  # noqa: E402
from experiments.run_log import RunLog  # noqa: E402
from lightning_modules import GPT2Mini  # noqa: E402
from metrics.induction import head_induction_scores, uniform_induction_score  # noqa: E402


def repeated_sequences(
    size: int = 1_000_000, shortest: int = 4, longest: int = 16, times: int = 4, seed: int = 0
) -> str:
    """About `size` characters of lines that say a random string of lowercase letters `times` times (each
    string `shortest` to `longest` long): every copy after the first is predictable only by copying from the
    one before, which is what an induction head does; the first is not predictable at all."""
    generator = torch.Generator().manual_seed(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines, written = [], 0
    while written < size:
        length = int(torch.randint(shortest, longest + 1, (), generator=generator))
        word = "".join(letters[i] for i in torch.randint(0, len(letters), (length,), generator=generator).tolist())
        lines.append(word * times)
        written += times * length + 1
    return "\n".join(lines) + "\n"


def curves(log_dir: str) -> dict[str, list]:
    """Per validation: the step, the validation loss, the in-context score and the largest induction score."""
    log = RunLog(log_dir)
    steps, val_loss = log.scalars("val_loss")
    heads = [dict(zip(*log.scalars(tag))) for tag in log.scalar_tags if tag.startswith(INDUCTION_SCORE)]
    largest = [max(head.get(step, float("nan")) for head in heads) if heads else float("nan") for step in steps]
    in_context = dict(zip(*log.scalars(IN_CONTEXT_SCORE))) if IN_CONTEXT_SCORE in log.scalar_tags else {}
    return {"step": steps, "val_loss": val_loss, "in_context": [in_context.get(s, float("nan")) for s in steps],
            "induction": largest}  # fmt: skip


def phase_change(curve: dict[str, list], uniform: float) -> dict | None:
    """The validation interval over which the largest induction score rose most, with the in-context score's
    change over it; None where no head ever scored twice what even attention scores (`uniform`): no induction
    head formed, and the largest rise is noise."""
    rises = [(b - a, i) for i, (a, b) in enumerate(itertools.pairwise(curve["induction"])) if a == a and b == b]
    if not rises or max(curve["induction"]) < 2 * uniform:
        return None
    rise, i = max(rises)
    return {"from_step": curve["step"][i], "to_step": curve["step"][i + 1], "induction_rise": rise,
            "in_context_change": curve["in_context"][i + 1] - curve["in_context"][i]}  # fmt: skip


def ablate_heads(model: GPT2Mini, data: str | None, windows: int, top: int) -> dict:
    """Mean-ablate the `top` heads with the highest induction scores together, then every other set of `top`
    heads; their in-context scores and losses against the intact model's."""
    gpt = model.gpt
    scores = head_induction_scores(gpt, gpt.config.vocab_size, gpt.config.block_size // 2)
    x, y = validation_windows(model, data, windows)
    means = head_means(gpt, x)
    ranked = sorted(map(tuple, (~scores.isnan()).nonzero().tolist()), key=lambda lh: -scores[lh].item())
    chosen, rest = ranked[:top], ranked[top:]

    def ablated(group: list[tuple[int, int]]) -> dict[str, float]:
        return evaluate(gpt, x, y, [ablate_head(layer, head, "mean", means) for layer, head in group])

    others = [ablated(list(group)) for group in itertools.combinations(rest, len(chosen))]
    return {
        "induction_scores": scores.tolist(),
        "top_heads": [list(lh) for lh in chosen],
        "intact": evaluate(gpt, x, y),
        "ablate_top": ablated(chosen),
        "ablate_others_mean": {k: statistics.fmean(o[k] for o in others) for k in others[0]} if others else None,
        "others_sets": len(others),
    }


def data_path(log_dir: str) -> str | None:
    """The text a run trained on, from the config LightningCLI saved beside its log."""
    config = yaml.safe_load((Path(log_dir) / "config.yaml").read_text(encoding="utf-8"))
    return config["data"]["init_args"].get("data_path")


def analyse(folder: Path, windows: int, top: int) -> dict:
    ablation = json.loads((folder / "ablation.json").read_text(encoding="utf-8"))
    results = {}
    for name, variant in ablation.items():
        if "runs" not in variant:
            continue
        for run in variant["runs"]:
            print(f"{name}, seed {run['seed']}: reading {run['log_dir']}", flush=True)
            checkpoint = Path(run["log_dir"]) / "checkpoints" / "last.ckpt"
            model = GPT2Mini.load_from_checkpoint(checkpoint, map_location="cpu").eval()
            curve = curves(run["log_dir"])
            uniform = uniform_induction_score(model.hparams.block_size // 2)
            entry = {"seed": run["seed"], "curve": curve, "uniform_induction_score": uniform,
                     "phase_change": phase_change(curve, uniform)}  # fmt: skip
            if not model.hparams.disable_attention:
                entry |= ablate_heads(model, data_path(run["log_dir"]), windows, top)
            results.setdefault(name, []).append(entry)
    return {"top": top, "windows": windows, "variants": results}


def plot(result: dict, path: Path) -> None:
    """Loss, in-context score and largest induction score against step; a line per run, the phase changes marked."""
    panels = {"val_loss": "validation loss", "in_context": "in-context score (late - early)",
              "induction": "largest induction score"}  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    colours = dict(zip(result["variants"], plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for name, runs in result["variants"].items():
        for i, run in enumerate(runs):
            for ax, key in zip(axes, panels):
                ax.plot(run["curve"]["step"], run["curve"][key], color=colours[name], alpha=0.8, linewidth=1.2,
                        label=name if i == 0 else None)  # fmt: skip
                change = run["phase_change"]
                if change and name.startswith("attn_only_2"):
                    ax.axvline(change["to_step"], color=colours[name], linestyle=":", linewidth=1)
    for ax, label in zip(axes, panels.values()):
        ax.set_xlabel("step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("induction heads forming (dotted: the 2-layer runs' phase changes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(result: dict) -> str:
    top = result["top"]
    lines = [
        f"| variant | seed | phase change (steps) | largest induction score, end | in-context score | "
        f"with its top {top} induction heads ablated | with {top} other heads ablated (mean of all sets) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in result["variants"].items():
        for run in runs:
            change = run["phase_change"]
            when = f"{change['from_step']}-{change['to_step']}" if change else "n/a"
            cells = [name, str(run["seed"]), when, f"{run['curve']['induction'][-1]:.2f}"]
            if "intact" in run:
                others = run["ablate_others_mean"]
                cells += [f"{run['intact']['in_context_score']:+.3f}", f"{run['ablate_top']['in_context_score']:+.3f}",
                          f"{others['in_context_score']:+.3f}" if others else "n/a"]  # fmt: skip
            else:
                cells += ["n/a"] * 3
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "folder", nargs="?", help="the --out folder of `python -m experiments.ablation --preset induction`"
    )
    parser.add_argument(
        "--write_corpus", metavar="PATH", help="write the repeated random strings corpus there and stop"
    )
    parser.add_argument("--windows", type=int, default=64, help="validation windows the ablations are measured on")
    parser.add_argument("--top", type=int, default=2, help="how many of the highest-scoring heads to ablate")
    args = parser.parse_args(argv)
    for name in ("windows", "top"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    if (args.folder is None) == (args.write_corpus is None):
        parser.error("give the folder of an induction run to analyse, or --write_corpus PATH")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.write_corpus:
        path = Path(args.write_corpus)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(repeated_sequences(), encoding="utf-8")
        print(
            f"Wrote {path}: lines of a random string of 4 to 16 letters said 4 times ({path.stat().st_size:,} characters)."
        )
        return
    folder = Path(args.folder)
    if not (folder / "ablation.json").is_file():
        sys.exit(f"error: {folder} holds no ablation.json: run `python -m experiments.ablation --preset induction "
                 f"--out {folder}` first.")  # fmt: skip
    try:
        result = analyse(folder, args.windows, args.top)
    except UserInputError as err:
        sys.exit(f"error: {err}")
    (folder / "induction.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, folder / "induction.png")
    (folder / "induction.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    print(f"Wrote {folder / 'induction.json'}, {folder / 'induction.md'} and {folder / 'induction.png'}.")


if __name__ == "__main__":
    main()
