"""Wall-clock seconds to a validation loss on tiny Shakespeare, from the command to the checkpoint.

    python -m benchmarks.time_to_target --nanogpt PATH/TO/nanoGPT        # about 15 minutes on a 2-core CPU
    python -m benchmarks.time_to_target --recipes fast --seeds 1         # one recipe, one seed

Every recipe is a command run in a fresh process and timed from its start to its exit (the lab's runs) or
to its first validation at or below the target with that validation's checkpoint written (nanoGPT's, whose
`train.py` has no early stop): start-up, data loading, validations and checkpoints all count. The lab's
runs stop by themselves at the target (Lightning's `EarlyStopping` with `stopping_threshold`), except the fast
config, which ends at a fixed length that gets there; their loss is over the whole validation split (the last 10% of the text, every window). nanoGPT's is its own estimate, the
mean of 20 random validation batches (its README's CPU recipe: `--eval_iters=20`).

The recipes take turns: for each seed, every recipe once, nanoGPT first, so that a slow spell of the
machine falls on all of them. nanoGPT's `train.py` seeds itself with 1337; a config file given before the
recipe's options moves that seed by the benchmark's seed (`torch.manual_seed` is wrapped, nothing else
changes). nanoGPT is not a dependency: `--nanogpt` names a checkout (its `data/shakespeare_char` is
prepared from `--data` when absent); without it that row is skipped, with a line that says so.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGET = 1.898  # nanoGPT's baby recipe (its README's CPU run) ends near this loss
SHAKESPEARE_CONFIG = ["--config", "configs/gpt2_mini.yaml", "--config", "configs/gpt2_mini_shakespeare.yaml"]
LLAMA = ["--model.norm", "rmsnorm", "--model.pos_emb", "rope", "--model.mlp", "swiglu", "--model.n_kv_head", "2",
         "--model.tie_weights", "false"]  # fmt: skip
RECIPES: dict[str, list[str]] = {
    "gpt2": SHAKESPEARE_CONFIG,
    "llama": [*SHAKESPEARE_CONFIG, *LLAMA],
    "llama_muon": [*SHAKESPEARE_CONFIG, *LLAMA, "--model.optimizer", "muon"],
    "fast": ["--config", "configs/gpt2_mini_fast.yaml"],
}
# nanoGPT's README, "baby GPT" on a CPU: its Shakespeare config at the lab's Shakespeare sizes.
NANOGPT_RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                  "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                  "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"]  # fmt: skip


def early_stop(target: float) -> list[str]:
    """train.py options that end the run at its first validation below `target` (the fast config validates only
    once, at its fixed end)."""
    return ["--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping", "--trainer.callbacks.monitor=val_loss",
            f"--trainer.callbacks.stopping_threshold={target}", "--trainer.callbacks.patience=1000000"]  # fmt: skip


def run_lab(recipe: str, seed: int, data: str, target: float, folder: Path) -> dict:
    """One train.py fit: seconds from start to exit, and the validation losses it logged."""
    from experiments.run_log import RunLog

    command = [sys.executable, "train.py", "fit", *RECIPES[recipe], "--data.data_path", data,
               "--seed_everything", str(seed), "--trainer.default_root_dir", str(folder),
               "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
               *([] if recipe == "fast" else early_stop(target))]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{recipe} (seed {seed}) failed:\n{result.stderr[-3000:]}")
    log = RunLog(next(folder.glob("lightning_logs/version_*")))
    steps, losses = log.scalars("val_loss")
    reached = next((step for step, loss in zip(steps, losses) if loss <= target), None)
    # Steady-state step time: the median over the logging intervals (10 steps each; those with a validation
    # in them are the slow tail the median leaves out), checkpoints and Lightning's own work included.
    logged, wall = log.scalars("train_loss")[0], log.wall_times("train_loss")
    per_step = [(t1 - t0) / (s1 - s0) for s0, s1, t0, t1 in zip(logged, logged[1:], wall, wall[1:])]
    return {"seconds": seconds, "reached": reached is not None, "step": reached, "val_losses": dict(zip(steps, losses)),
            "step_ms": 1000 * statistics.median(per_step)}  # fmt: skip


def prepare_nanogpt(nanogpt: Path, data: str) -> None:
    """nanoGPT's `data/shakespeare_char/{train,val}.bin` from our copy of the text (its script would download it)."""
    folder = nanogpt / "data" / "shakespeare_char"
    if (folder / "train.bin").exists():
        return
    (folder / "input.txt").write_bytes(Path(data).read_bytes())
    subprocess.run([sys.executable, "prepare.py"], cwd=folder, check=True, capture_output=True)


def run_nanogpt(nanogpt: Path, seed: int, target: float, folder: Path) -> dict:
    """nanoGPT's train.py, timed to the end of its first evaluation at or below `target` (checkpoint written)."""
    seed_config = folder / "seed.py"
    seed_config.write_text(f"import torch\n_seed = torch.manual_seed\ntorch.manual_seed = lambda s: _seed(s - 1337 + {seed})\n")
    command = [sys.executable, "train.py", *NANOGPT_RECIPE[:1], str(seed_config), *NANOGPT_RECIPE[1:], f"--out_dir={folder}"]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=nanogpt, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    val_losses, reached, seconds, step_ms = {}, None, None, []
    for line in process.stdout:
        if line.startswith("iter "):  # "iter 250: loss 2.0093, time 26.80ms, mfu 0.05%"
            step_ms.append(float(line.split("time ")[1].split("ms")[0]))
        if line.startswith("step "):  # "step 250: train loss 2.0093, val loss 2.0812"
            step = int(line.split()[1].rstrip(":"))
            val_losses[step] = float(line.rsplit(" ", 1)[1])
            if val_losses[step] <= target and reached is None:
                reached = step
        elif line.startswith("iter ") and reached is not None:  # the checkpoint is written: training went on
            seconds = time.perf_counter() - start
            break
    process.kill()
    process.wait()
    if seconds is None:
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "reached": reached is not None, "step": reached, "val_losses": val_losses,
            "step_ms": statistics.median(step_ms[1:])}  # fmt: skip


def summarize(runs: list[dict]) -> dict:
    times = [run["seconds"] for run in runs]
    reached_at = [run["step"] for run in runs if run["reached"]]
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "median_step_ms": statistics.median(run["step_ms"] for run in runs),
            "reached": len(reached_at), "seeds": len(runs),
            "median_step": statistics.median(reached_at) if reached_at else None}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHAKESPEARE), help="tiny Shakespeare (default: ../shared/data's)")
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout; without it the nanoGPT row is skipped")
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1337, 1338, ...: every recipe once per seed")
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--output", default="benchmarks/time_to_target.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not Path(args.data).is_file():
        sys.exit(f"error: {args.data} not found: give tiny Shakespeare with --data.")
    names = list(args.recipes)
    if args.nanogpt is None or not (args.nanogpt / "train.py").is_file():
        print(f"nanoGPT: skipped ({'no --nanogpt given' if args.nanogpt is None else f'no train.py in {args.nanogpt}'})")
    else:
        prepare_nanogpt(args.nanogpt, args.data)
        names.insert(0, "nanoGPT")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for seed in range(1337, 1337 + args.seeds):
        for name in names:
            with tempfile.TemporaryDirectory(prefix="lab-ttt-") as folder:
                if name == "nanoGPT":
                    run = run_nanogpt(args.nanogpt, seed, args.target, Path(folder))
                else:
                    run = run_lab(name, seed, args.data, args.target, Path(folder))
            runs[name].append({"seed": seed, **run})
            shown = f"step {run['step']}" if run["reached"] else "not reached"
            print(f"seed {seed}  {name:<12} {run['seconds']:7.1f} s  {shown}  {run['step_ms']:.1f} ms/step", flush=True)
    results = {
        "target": args.target,
        "recipes": {name: {"command": RECIPES.get(name, NANOGPT_RECIPE), **summarize(r), "runs": r}
                    for name, r in runs.items()},  # fmt: skip
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},  # fmt: skip
    }
    print(f"\n{'recipe':<12} {'median s':>9} {'min-max s':>13} {'reached':>8} {'ms/step':>8}")
    for name, row in results["recipes"].items():
        print(f"{name:<12} {row['median_s']:9.1f} {row['min_s']:6.1f}-{row['max_s']:<6.1f} "
              f"{row['reached']:>5}/{row['seeds']} {row['median_step_ms']:8.1f}")  # fmt: skip
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
