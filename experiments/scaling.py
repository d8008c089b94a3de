"""The scaling experiment: train GPT2Mini at five sizes on the same text and record val loss against size.

    python -m experiments.scaling --data tinyshakespeare.txt --out runs/scaling --quick
    python -m experiments.scaling --data tinyshakespeare.txt --out runs/scaling --steps 2000
    python -m experiments.plot_scaling runs/scaling/scaling_results.json --output scaling.png

The sizes follow the original plan (about 0.34M to 15.7M parameters). `--quick` trains the three smallest
for 500 steps on short windows (context 64, batch 16), which fits in minutes on a laptop CPU; the full run
uses context 256 and batch 32 (8,192 tokens a step), as the plan did. Results are saved after every size,
and a rerun skips sizes already finished with the same settings.
"""

import argparse
import json
from pathlib import Path

from experiments.runs import CONFIGS, fit

SIZES = {
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 112},
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 160},
    "medium": {"n_layer": 6, "n_head": 6, "n_embd": 216},
    "base": {"n_layer": 8, "n_head": 8, "n_embd": 240},
    "large": {"n_layer": 8, "n_head": 8, "n_embd": 400},
}
QUICK_SIZES = ["tiny", "small", "medium"]
FULL = {"steps": 2000, "block_size": 256, "batch_size": 32, "warmup_steps": 100}
QUICK = {"steps": 500, "block_size": 64, "batch_size": 16, "warmup_steps": 50}
LEARNING_RATE = 1e-3


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="text file to train on (default: the built-in lab notes)")
    parser.add_argument("--out", default="runs/scaling")
    parser.add_argument("--steps", type=int, help="training steps per size (default 2000, or 500 with --quick)")
    parser.add_argument("--quick", action="store_true", help="three sizes, 500 steps, short windows")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), help="which sizes to train")
    args, passthrough = parser.parse_known_args(argv)
    if args.steps is not None and args.steps <= 0:
        parser.error(f"--steps must be positive, got {args.steps}")
    return args, passthrough


def main(argv: list[str] | None = None) -> None:
    args, passthrough = parse_args(argv)
    settings = {**(QUICK if args.quick else FULL)}
    if args.steps:
        settings["steps"] = args.steps
    names = args.sizes or (QUICK_SIZES if args.quick else list(SIZES))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "scaling_results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []

    for i, name in enumerate(names, 1):
        done = next((r for r in results if r["name"] == name and r["steps"] == settings["steps"]), None)
        if done and done["block_size"] == settings["block_size"] and done["batch_size"] == settings["batch_size"]:
            print(f"[{i}/{len(names)}] {name}: already finished (val loss {done['val_loss']:.3f}), skipping", flush=True)
            continue
        size = SIZES[name]
        print(f"[{i}/{len(names)}] {name}: {size}, {settings['steps']} steps", flush=True)
        train_args = [f"--model.{k}={v}" for k, v in size.items()] + [
            f"--data.block_size={settings['block_size']}",
            f"--data.batch_size={settings['batch_size']}",
            "--data.val_batch_size=256",
            f"--model.learning_rate={LEARNING_RATE}",
            f"--model.warmup_steps={settings['warmup_steps']}",
            "--model.dropout=0.0",
        ]
        if args.data:
            train_args.append(f"--data.data_path={args.data}")
        run = fit(CONFIGS["gpt2_mini"], out, name, settings["steps"], train_args + passthrough)
        parameters = run.model.gpt.num_parameters()
        results = [r for r in results if r["name"] != name] + [
            {
                "name": name,
                **size,
                "parameters": parameters,
                "non_embedding_parameters": run.model.gpt.num_parameters(non_embedding=True),
                "val_loss": run.val_loss,
                "train_loss": run.train_loss,
                "steps": settings["steps"],
                "block_size": settings["block_size"],
                "batch_size": settings["batch_size"],
                "tokens_seen": settings["steps"] * settings["block_size"] * settings["batch_size"],
                "wall_time_s": round(run.wall_time_s, 1),
                "log_dir": run.log_dir,
            }
        ]
        results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"[{i}/{len(names)}] {name}: {parameters / 1e6:.2f}M parameters, val loss {run.val_loss:.3f}, "
              f"{run.wall_time_s:.0f} s", flush=True)  # fmt: skip
    print(f"Results in {results_path}; plot them with python -m experiments.plot_scaling {results_path}")


if __name__ == "__main__":
    main()
