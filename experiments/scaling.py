"""The scaling experiment: how GPT2Mini's loss falls with size, and which size a compute budget should buy.

    python -m experiments.scaling --data tinyshakespeare.txt --out runs/scaling --quick   # about 26 CPU minutes
    python -m experiments.scaling --data tinyshakespeare.txt --out runs/scaling           # the full preset

Two experiments, each run through train.py's machinery (`experiments.runs.fit` on configs/gpt2_mini.yaml):

- **sizes**: a ladder of sizes, each trained on the same number of tokens over several seeds. Fitted with the
  plan's power law L = a·N^-b and with L = E + A·N^-alpha (an irreducible loss E) with bootstrap intervals;
  the largest size is held out of a second fit, whose prediction for it is reported beside the measurement.
- **isoflop**: for each compute budget C, every size of the ladder with at least `MIN_STEPS` steps and
  between 0.25 and 2,000 tokens a parameter, trained on exactly D = C / 6N tokens; each budget's best size
  gives N_opt ∝ C^a and D_opt ∝ C^b. L(N, D) = E + A·N^-alpha + B·D^-beta is fitted on every run of both.

N is non-embedding parameters and C = 6·N·D (see experiments/scaling_laws.py). Every run uses context 64,
batch 32 (2,048 tokens a step), learning rate 1e-3 with a warm-up over a tenth of the run (at most 100
steps) and a cosine to a tenth of it at the run's own last step, no dropout, and one validation at the end
on the whole validation split. `--out` gets `scaling_results.json` (one entry a run, saved after each; a
rerun skips finished runs, so an interrupted grid resumes where it stopped), `scaling_fit.json`,
`scaling_law.png` and `isoflop.png`. The full preset contains every run of the quick one: running it in
the quick run's folder adds only the rest. Extra options go to train.py (they must not change the model's
size: the step counts are computed from it).
"""

import argparse
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from experiments import plot_scaling
from experiments import scaling_laws as laws
from experiments.runs import CONFIGS, fit
from lightning_modules.transformer import GPT, GPTConfig

SIZES = {
    "pico": {"n_layer": 2, "n_head": 2, "n_embd": 32},
    "nano": {"n_layer": 2, "n_head": 2, "n_embd": 48},
    "micro": {"n_layer": 2, "n_head": 4, "n_embd": 80},
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 112},
    "mini": {"n_layer": 3, "n_head": 4, "n_embd": 128},
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 160},
    "medium": {"n_layer": 6, "n_head": 6, "n_embd": 216},
}
BLOCK_SIZE, BATCH_SIZE = 64, 32
LEARNING_RATE = 1e-3
MIN_STEPS = 100  # an isoFLOP run shorter than this is mostly warm-up
# The isoFLOP sizes of a budget: from far too big for it to far too small. Chinchilla's optimum is about 20
# tokens a parameter; at this scale it is far higher (see docs/scaling.md), so the range reaches 2,000.
TOKENS_PER_PARAMETER = (0.25, 2000)
LOG_EVERY = 50  # steps between logged training losses (logging every step slows the small sizes by a third)


@dataclass(frozen=True)
class Preset:
    sizes: tuple[str, ...]  # the sizes experiment; the last is the held-out size
    seeds: tuple[int, ...]
    tokens: int  # tokens each size of the sizes experiment trains on
    budgets: tuple[float, ...]  # the isoFLOP budgets, in FLOPs


PRESETS = {
    "quick": Preset(
        ("nano", "micro", "tiny", "mini", "small"),
        (0, 1),
        1000 * BLOCK_SIZE * BATCH_SIZE,
        (1e12, 3e12, 1e13),
    ),  # fmt: skip
    "full": Preset(
        ("nano", "micro", "tiny", "mini", "small", "medium"),
        (0, 1, 2),
        1000 * BLOCK_SIZE * BATCH_SIZE,
        (1e12, 3e12, 1e13, 3e13),
    ),  # fmt: skip
}


@dataclass(frozen=True)
class Run:
    experiment: str  # "sizes" or "isoflop"
    name: str  # a key of SIZES
    seed: int
    steps: int
    budget: float | None = None  # the isoFLOP budget it belongs to

    @property
    def log_name(self) -> str:
        """Its TensorBoard folder under --out."""
        if self.experiment == "sizes":
            return f"sizes/{self.name}-seed{self.seed}"
        return f"isoflop/{self.budget:.0e}/{self.name}"

    def matches(self, entry: dict, train_args: list[str]) -> bool:
        """Whether a saved result is this run, trained with the same settings (results of the earlier,
        sizes-only experiment have no `experiment`, `seed` or `budget`, and match nothing)."""
        saved = [
            entry.get(key) for key in ("experiment", "name", "seed", "steps", "budget", "block_size", "batch_size")
        ]
        mine = [self.experiment, self.name, self.seed, self.steps, self.budget, BLOCK_SIZE, BATCH_SIZE]
        return saved == mine and entry.get("train_args") == train_args


def non_embedding_parameters(name: str) -> int:
    """N of a size of the ladder (with a tied head it does not depend on the vocabulary)."""
    return _non_embedding_parameters(**SIZES[name])


@functools.cache
def _non_embedding_parameters(n_layer: int, n_head: int, n_embd: int) -> int:
    with torch.device("meta"):  # counts the parameters of a model that allocates nothing
        config = GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=BLOCK_SIZE)
        return GPT(config).num_parameters(non_embedding=True)


def plan(preset: Preset) -> list[Run]:
    """Every run of a preset, sizes experiment first, then the budgets from the smallest."""
    tokens_per_step = BLOCK_SIZE * BATCH_SIZE
    runs = [
        Run("sizes", name, seed, preset.tokens // tokens_per_step) for seed in preset.seeds for name in preset.sizes
    ]
    for budget in preset.budgets:
        for name in SIZES:
            n = non_embedding_parameters(name)
            steps = round(budget / (6 * n) / tokens_per_step)
            low, high = TOKENS_PER_PARAMETER
            if steps >= MIN_STEPS and low * n <= steps * tokens_per_step <= high * n:
                runs.append(Run("isoflop", name, preset.seeds[0], steps, budget))
    return runs


def train(run: Run, out: Path, data: str | None, passthrough: list[str]) -> dict:
    """One run through train.py; returns its entry for scaling_results.json."""
    train_args = [f"--model.{k}={v}" for k, v in SIZES[run.name].items()] + [
        f"--data.block_size={BLOCK_SIZE}",
        f"--data.batch_size={BATCH_SIZE}",
        "--data.val_batch_size=256",
        f"--model.learning_rate={LEARNING_RATE}",
        f"--model.warmup_steps={min(100, run.steps // 10)}",
        "--model.dropout=0.0",
        f"--seed_everything={run.seed}",
        f"--trainer.log_every_n_steps={min(LOG_EVERY, run.steps)}",
    ]
    if data:
        train_args.append(f"--data.data_path={data}")
    result = fit(CONFIGS["gpt2_mini"], out, run.log_name, run.steps, train_args + passthrough)
    n = result.model.gpt.num_parameters(non_embedding=True)
    tokens = run.steps * BLOCK_SIZE * BATCH_SIZE
    return {
        "experiment": run.experiment,
        "name": run.name,
        "seed": run.seed,
        "budget": run.budget,
        **SIZES[run.name],
        "parameters": result.model.gpt.num_parameters(),
        "non_embedding_parameters": n,
        "val_loss": result.val_loss,
        "val_bits_per_char": laws.bits(result.val_loss),
        "train_loss": result.train_loss,
        "steps": run.steps,
        "block_size": BLOCK_SIZE,
        "batch_size": BATCH_SIZE,
        "learning_rate": result.model.hparams.learning_rate,
        "tokens_seen": tokens,
        "flops": laws.training_flops(n, tokens),
        "wall_time_s": round(result.wall_time_s, 1),
        "train_args": passthrough,
        "log_dir": result.log_dir,
    }


def analyse(preset: Preset, results: list[dict]) -> dict:
    """Every fit of scaling_fit.json, from the runs of one preset."""
    sizes_runs = [r for r in results if r["experiment"] == "sizes"]
    by_size: dict[float, list[float]] = {}
    for r in sizes_runs:
        by_size.setdefault(r["non_embedding_parameters"], []).append(r["val_loss"])
    budgets: dict[float, tuple[list[float], list[float]]] = {}
    for r in results:
        if r["experiment"] == "isoflop":
            n, loss = budgets.setdefault(r["budget"], ([], []))
            n.append(r["non_embedding_parameters"])
            loss.append(r["val_loss"])
    held_out = next(r for r in sizes_runs if r["name"] == preset.sizes[-1])
    power = laws.fit_power_law([r["non_embedding_parameters"] for r in sizes_runs], [r["val_loss"] for r in sizes_runs])
    n, d, loss = ([r[key] for r in results] for key in ("non_embedding_parameters", "tokens_seen", "val_loss"))
    two = laws.fit_two_variable(n, d, loss)
    resamples = laws.BOOTSTRAP_RESAMPLES
    return {
        "conventions": {
            "parameters": "non-embedding (token and position tables left out; the head is tied to the token table)",
            "flops": "C = 6 N D, D = training tokens",
            "loss": "validation loss per character in nats (bits = nats / ln 2)",
            "interval": f"95%, bootstrap over sizes and seeds ({resamples} resamples)",
        },
        "tokens_per_size": preset.tokens,
        "runs": {
            "sizes": len(sizes_runs),
            "isoflop": len(results) - len(sizes_runs),
            "tokens": sum(d),
            "wall_time_s": round(sum(r["wall_time_s"] for r in results), 1),  # training, each run on its own
        },
        "power_law": vars(power),
        "irreducible": laws.law_with_intervals(by_size, resamples),
        "held_out": {
            "name": held_out["name"],
            "parameters": held_out["non_embedding_parameters"],
            **laws.predict_held_out(by_size, held_out["non_embedding_parameters"], resamples),
        },
        "isoflop": laws.fit_isoflop(budgets),
        "two_variable": {**vars(two), "r2": laws.r_squared(np.array(loss), two(n, d))},
    }


def summary(fit: dict) -> str:
    """What a learner wants to read after the run, in a few lines."""
    p, e, h, iso = fit["power_law"], fit["irreducible"], fit["held_out"], fit["isoflop"]
    lines = [
        f"Power law:        L = {p['a']:.3f} x N^-{p['b']:.4f}  (R^2 {p['r2']:.3f})",
        f"Irreducible loss: L = {e['E']:.3f} + {e['A']:.3g} x N^-{e['alpha']:.3f}  (R^2 {e['r2']:.3f}; 95%: "
        f"E {e['ci']['E'][0]:.2f}-{e['ci']['E'][1]:.2f}, alpha {e['ci']['alpha'][0]:.2f}-{e['ci']['alpha'][1]:.2f})",
        f"Held out {h['name']} ({h['parameters'] / 1e6:.2f}M): predicted {h['predicted']:.3f} "
        f"[{h['interval'][0]:.3f}, {h['interval'][1]:.3f}], measured {h['measured']:.3f} "
        f"(error {h['error']:+.3f}, {100 * h['relative_error']:+.1f}%)",
    ]
    for b in iso["budgets"]:
        edge = "" if b["interior"] else " (at the edge of the sizes trained)"
        lines.append(f"Budget {b['flops']:.0e} FLOPs: best {b['best_parameters'] / 1e6:.3f}M parameters on "
                     f"{b['best_tokens'] / 1e6:.2f}M tokens ({b['tokens_per_parameter']:.1f} a parameter){edge}")  # fmt: skip
    if iso["a"] is not None:
        edges = sum(not b["interior"] for b in iso["budgets"])
        caveat = f"; {edges} of {len(iso['budgets'])} optima at an edge, so these are rough" if edges else ""
        lines.append(f"N_opt ~ C^{iso['a']:.2f}, D_opt ~ C^{iso['b']:.2f} (Chinchilla: about 0.5 each{caveat})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="text file to train on (default: the built-in lab notes)")
    parser.add_argument("--out", default="runs/scaling")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the quick preset (about 26 minutes on a 2-core CPU)",
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> None:
    args, passthrough = parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "scaling_results.json"
    saved = json.loads(results_path.read_text()) if results_path.exists() else []
    runs = plan(preset)
    mine = []
    for i, run in enumerate(runs, 1):
        label = f"[{i}/{len(runs)}] {run.experiment} {run.name}" + (
            f" seed {run.seed}" if run.experiment == "sizes" else f" at {run.budget:.0e} FLOPs"
        )
        done = next((r for r in saved if run.matches(r, passthrough)), None)
        if done:
            print(
                f"{label}: already finished (val loss {done['val_loss']:.3f}), skipping",
                flush=True,
            )
        else:
            print(f"{label}: {run.steps} steps", flush=True)
            done = train(run, out, args.data, passthrough)
            saved.append(done)
            results_path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
            print(f"{label}: val loss {done['val_loss']:.3f} ({done['val_bits_per_char']:.3f} bits a character), "
                  f"{done['wall_time_s']:.0f} s", flush=True)  # fmt: skip
        mine.append(done)
    fit_result = analyse(preset, mine)
    (out / "scaling_fit.json").write_text(json.dumps(fit_result, indent=2) + "\n", encoding="utf-8")
    plot_scaling.plot_law(mine, fit_result, out / "scaling_law.png")
    plot_scaling.plot_isoflop(mine, fit_result, out / "isoflop.png")
    print(summary(fit_result))
    print(f"Results in {results_path}, fits in {out / 'scaling_fit.json'}, figures "
          f"{out / 'scaling_law.png'} and {out / 'isoflop.png'}")  # fmt: skip


if __name__ == "__main__":
    main()
