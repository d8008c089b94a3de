"""Speed of the lab's hot paths on this machine: prints a table and writes JSON.

    python -m benchmarks.run            # about 10 minutes on a 2-core CPU
    python -m benchmarks.run --quick    # about 3 minutes

Measures GPT2Mini training tokens/s through Lightning and through a bare PyTorch loop (same model, data,
optimizer and settings: configs/gpt2_mini_shakespeare.yaml; the bare loop with and without the config's
last.ckpt every 30 seconds), GPT2Mini generation tokens/s with and without
the KV cache (greedy, and sampling with top-k), DDPM training images/s, and seconds to sample 64 images with the 1000-step DDPM sampler and
50-step DDIM (configs/ddpm.yaml's model), and what the observation callbacks add to a training run's wall
time (not in --quick: it trains one full validation interval of each config), and how long a DDPM fit
given one minute (`--trainer.max_time 00:00:01:00`) takes from command to exit (not in --quick). Each
benchmark runs in a fresh process, whose peak resident memory is reported beside it. Weights are untrained: speed does not depend on them.
"""

import argparse
import json
import multiprocessing
import platform
import queue as queue_module
import resource
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
MNIST_ROOT = REPO.parent / "shared" / "data"
GPT_RUN, DDPM_RUN = "gpt2_mini_shakespeare", "ddpm"  # the runs of experiments.runs.CONFIGS measured here
REPEATS = 5


class _BareLoop:
    """The gpt2_mini_shakespeare model, data, optimizer, schedule and clipping in a plain PyTorch loop.

    With `checkpoint_every_s`, it writes a last.ckpt holding the same tensors as train.py's (weights, optimizer,
    schedule, random states) with the same writer, waiting for each write before the next step's update as
    `LastCheckpoint` does.
    """

    def __init__(self, data: str | None, folder: Path, checkpoint_every_s: float | None = None) -> None:
        from checkpoints import AtomicCheckpointIO
        from experiments.runs import CONFIGS, config_args
        from train import LabCLI

        # The config's model and data, built (and seeded) by train.py's own command line, without a run.
        data_args = ["--data.data_path", data] if data else []
        args = [*config_args(CONFIGS[GPT_RUN]), "--trainer.default_root_dir", str(folder), *data_args]
        cli = LabCLI(args=args, run=False)
        dm, self.model = cli.datamodule, cli.model
        self.tokens_per_step = dm.batch_size * dm.block_size
        self.model.trainer = SimpleNamespace(estimated_stepping_batches=cli.trainer.max_steps)  # what the schedule reads
        optimization = self.model.configure_optimizers()
        self.optimizer, self.scheduler = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
        self.batches = iter(dm.train_dataloader())
        self.checkpoint_every_s, self.path, self.writer = checkpoint_every_s, folder / "last.ckpt", AtomicCheckpointIO(background=True)
        self.step, self.training_s, self.saved_at_s = 0, 0.0, 0.0  # `checkpoint_every_s` counts training time

    def run(self, steps: int) -> float:
        """Seconds for the next `steps` steps, with any checkpoint they write on disk."""
        from checkpoints import collect_rng_states

        start = time.perf_counter()
        self.model.train()
        for _ in range(steps):
            x, y = next(self.batches)
            loss = self.model.loss(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.writer.wait()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            clock = self.training_s + time.perf_counter() - start  # this loop's training time so far
            if self.checkpoint_every_s and clock - self.saved_at_s >= self.checkpoint_every_s:
                self.saved_at_s = clock
                checkpoint = {
                    "state_dict": self.model.state_dict(),
                    "optimizer_states": [self.optimizer.state_dict()],
                    "lr_schedulers": [self.scheduler.state_dict()],
                    "global_step": self.step,
                    "rng_states": collect_rng_states(),
                }
                self.writer.save_checkpoint(checkpoint, self.path)
        self.writer.wait()
        elapsed = time.perf_counter() - start
        self.training_s += elapsed
        return elapsed


def _gpt_training(steps: int, turn: int, data: str | None) -> dict:
    """Lightning's fit loop and two bare loops, `turn` steps each in turns, in one process.

    Timings on a shared machine drift by 10-20% within minutes; loops that take turns every second or so
    meet the same drift, where loops run one after the other do not. The Lightning loop is train.py with the
    gpt2_mini_shakespeare config (logging, grad norms, LR monitor, last.ckpt every 30 s of training) without
    validation; the bare loops run in one of its callbacks, between its steps. One bare loop writes the same
    last.ckpt every 30 s of its own training (the like-for-like comparison), the other none (what that crash
    safety costs).
    The first turn of each loop warms up and is not timed.
    """
    import lightning.pytorch as pl

    from experiments.runs import CONFIGS, config_args
    from train import LabCLI

    folder = Path(_tmpdir())
    every = 30.0  # configs/gpt2_mini.yaml's LastCheckpoint
    bare = {"bare": _BareLoop(data, folder / "bare", every), "bare_no_checkpoints": _BareLoop(data, folder / "none")}
    seconds, timed_steps = dict.fromkeys(["lightning", *bare], 0.0), dict.fromkeys(["lightning", *bare], 0)

    class TakeTurns(pl.Callback):
        turn_start = 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            step = trainer.global_step
            if step % turn:
                return
            trainer.strategy.checkpoint_io.wait()  # Lightning's turn ends with its checkpoints on disk too
            if step >= 2 * turn:
                seconds["lightning"] += time.perf_counter() - self.turn_start
                timed_steps["lightning"] += turn
            for name, loop in bare.items():
                elapsed = loop.run(turn)
                if step >= turn:
                    seconds[name] += elapsed
                    timed_steps[name] += turn
            self.turn_start = time.perf_counter()

    LabCLI(
        args=[
            "fit", *config_args(CONFIGS[GPT_RUN]),
            "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(folder / "lightning"),
            *(["--data.data_path", data] if data else []),
        ],
        trainer_defaults={"callbacks": [TakeTurns()]},
    )  # fmt: skip
    tokens_per_step = bare["bare"].tokens_per_step  # the same data settings in all three loops
    tokens_per_s = {name: timed_steps[name] * tokens_per_step / seconds[name] for name in seconds}
    return {
        "lightning_tokens_per_s": tokens_per_s["lightning"],
        "bare_tokens_per_s": tokens_per_s["bare"],
        "bare_no_checkpoints_tokens_per_s": tokens_per_s["bare_no_checkpoints"],
        "ratio": tokens_per_s["lightning"] / tokens_per_s["bare"],
        "ratio_to_no_checkpoints": tokens_per_s["lightning"] / tokens_per_s["bare_no_checkpoints"],
        "checkpoint_every_s": every,
        "turn_steps": turn,
    }


def _generation(new_tokens: int, top_k: int | None = None) -> dict:
    """The default GPT2Mini size (4 layers, 4 heads, 128 wide, block 256), from one token: greedy, or with
    `top_k` sampling at temperature 1 (the same seed for both paths, so the same tokens are drawn).

    With and without the cache in turns, in one process, best of a few: short timings are noisy.
    """
    from lightning_modules import GPT2Mini

    torch.manual_seed(0)
    model = GPT2Mini(vocab_size=65, dropout=0.0).eval()
    start_token = torch.zeros(1, 1, dtype=torch.long)
    settings = {"temperature": 1.0, "top_k": top_k} if top_k else {"temperature": 0}
    seconds, tokens = {True: float("inf"), False: float("inf")}, {}
    for _ in range(REPEATS):
        for use_cache in (True, False):
            torch.manual_seed(1)
            start = time.perf_counter()
            tokens[use_cache] = model.generate(start_token, new_tokens, use_cache=use_cache, **settings)[0].tolist()
            seconds[use_cache] = min(seconds[use_cache], time.perf_counter() - start)
    return {
        "cache_tokens_per_s": new_tokens / seconds[True],
        "no_cache_tokens_per_s": new_tokens / seconds[False],
        "speedup": seconds[False] / seconds[True],
        "identical_tokens": tokens[True] == tokens[False],
    }


def _gpt_compile(steps: int, warmup: int, compile: bool) -> dict:
    """Training steps of the gpt2_mini_shakespeare model (4x128, block 64, batch 12) on random tokens.

    The first `warmup` steps (where torch.compile compiles) are timed apart from the rest.
    """
    from lightning_modules import GPT2Mini

    torch.manual_seed(0)
    model = GPT2Mini(vocab_size=65, block_size=64, dropout=0.0)
    loss = torch.compile(model.loss) if compile else model.loss  # what `compile=True` trains with
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = (torch.randint(0, 65, (12, 64)), torch.randint(0, 65, (12, 64)))
    seconds = _timed_steps(lambda step: loss(*batch), optimizer, steps, warmup)
    return {"tokens_per_s": (steps - warmup) * 12 * 64 / seconds["steady"], "warmup_s": seconds["warmup"]}


def _timed_steps(loss_of_step: Callable, optimizer, steps: int, warmup: int, bf16: bool = False) -> dict:
    """Seconds spent in the first `warmup` optimizer steps and in the `steps - warmup` after them."""
    start = time.perf_counter()
    for step in range(steps):
        if step == warmup:
            warm = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of_step(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {"warmup": warm - start, "steady": time.perf_counter() - warm}


def _ddpm_model(compile: bool = False):
    import yaml

    from lightning_modules import DDPM

    config = yaml.safe_load((REPO / "configs/ddpm.yaml").read_text())
    args = {k: v for k, v in config["model"]["init_args"].items() if k not in ("num_samples", "sample_steps", "eta")}
    model = DDPM(**args, compile=compile)
    return model, config["trainer"].get("precision") == "bf16-mixed", config["data"]["init_args"]["batch_size"]


def _ddpm_training(steps: int, warmup: int, compile: bool = False) -> dict:
    """Training steps of configs/ddpm.yaml's model, batch size and precision, on random images."""
    torch.manual_seed(0)
    model, bf16, batch_size = _ddpm_model(compile)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    x0 = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    seconds = _timed_steps(lambda step: model.training_step([x0], step), optimizer, steps, warmup, bf16)
    images_per_s = (steps - warmup) * batch_size / seconds["steady"]
    return {"images_per_s": images_per_s, "warmup_s": seconds["warmup"], "bf16": bf16}


def _ddpm_sampling(num_samples: int, steps: int | None) -> dict:
    """Seconds to draw `num_samples` images with configs/ddpm.yaml's model and precision."""
    torch.manual_seed(0)
    model, bf16, _ = _ddpm_model()
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model.sample(num_samples, steps=steps, seed=0)
    return {"seconds": time.perf_counter() - start, "bf16": bf16}


OBSERVERS = ("TransformerObserver", "DiffusionObserver", "UpdateRatioLogger")


def _observation_overhead(run: str, data_args: list[str]) -> dict:
    """How much the observation callbacks add to a run of `config`, over one validation interval.

    The run trains `val_check_interval` steps and validates once, so it holds training steps, logging
    steps and validations in the full run's proportions. Lightning's SimpleProfiler times every callback
    hook; the observers' hooks against the rest of the fit is what observation adds to the wall time.
    Timing a run with and without them instead would measure the machine's drift (10-20% here), not 3%.
    """
    import lightning.pytorch as pl
    import yaml

    from experiments.runs import CONFIGS, config_args
    from train import LabCLI

    fit_seconds = {}

    class FitClock(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            fit_seconds["start"] = time.perf_counter()

        def on_fit_end(self, trainer, pl_module):
            fit_seconds["total"] = time.perf_counter() - fit_seconds["start"]

    folder = _tmpdir()
    configs = CONFIGS[run]
    intervals = [yaml.safe_load(c.read_text())["trainer"].get("val_check_interval") for c in configs]
    steps = [interval for interval in intervals if interval is not None][-1]  # the last config's says
    cli = LabCLI(
        args=[
            "fit", *config_args(configs), "--trainer.max_steps", str(steps), "--trainer.max_time", "null",
            "--trainer.profiler", "lightning.pytorch.profilers.SimpleProfiler",
            "--trainer.profiler.dirpath", folder, "--trainer.profiler.filename", "profile",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", folder, *data_args,
        ],
        trainer_defaults={"callbacks": [FitClock()]},
    )  # fmt: skip
    observing = sum(
        sum(durations)
        for action, durations in cli.trainer.profiler.recorded_durations.items()
        if action.startswith(tuple(f"[Callback]{name}." for name in OBSERVERS))
    )
    return {
        "steps": steps,
        "observing_s": observing,
        "fit_s": fit_seconds["total"],
        "overhead": observing / (fit_seconds["total"] - observing),
    }


def _time_budget(mnist: str, budget: str = "00:00:01:00") -> dict:
    """Seconds from `python train.py fit --config configs/ddpm.yaml --trainer.max_time BUDGET` to its exit.

    The whole command is timed, from process start (imports, reading MNIST, the sanity check) to the last
    checkpoint written after the final validation, grid and trajectory: what a user waits for.
    """
    import subprocess
    import sys

    command = [sys.executable, "train.py", "fit", "--config", "configs/ddpm.yaml", "--trainer.max_time", budget,
               "--data.data_dir", mnist, "--trainer.default_root_dir", _tmpdir(),
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    days, hours, minutes, seconds = map(int, budget.split(":"))
    output = result.stderr.splitlines() + result.stdout.splitlines()
    stop = next((line for line in output if "Stopping at step" in line), "")
    return {"budget_s": ((days * 24 + hours) * 60 + minutes) * 60 + seconds, "wall_s": wall, "stopped": stop.strip()}


def _tmpdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="lab-bench-")


def _child(fn: Callable, args: tuple, queue) -> None:
    result = fn(*args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(fn: Callable, *args) -> dict:
    """Run one benchmark in a fresh process, so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(fn, args, queue))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1)
            break
        except queue_module.Empty:
            if not process.is_alive():
                raise RuntimeError(f"{fn.__name__} failed (exit code {process.exitcode}); see its traceback above")
    process.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps: a rough figure in a few minutes")
    parser.add_argument("--data", default=str(SHAKESPEARE) if SHAKESPEARE.exists() else None,
                        help="text for the GPT training benchmark (default: tiny Shakespeare if present)")  # fmt: skip
    parser.add_argument("--mnist", default=str(MNIST_ROOT) if (MNIST_ROOT / "MNIST" / "raw").is_dir() else None,
                        help="MNIST root folder for the DDPM observation row (default: ../shared/data if present)")  # fmt: skip
    parser.add_argument("--output", default="benchmarks/results.json")
    args = parser.parse_args(argv)
    # The Lightning/bare comparison gets the most steps: a slow spell of a few seconds moves a short one by 3%.
    loop_steps, gpt_steps, ddpm_steps = (120, 120, 12) if args.quick else (1200, 600, 40)
    rows: dict[str, dict] = {}

    def record(name: str, result: dict, figure: str) -> None:
        rows[name] = result
        print(f"{name:<44} {figure:>22} {result['peak_rss_mb']:>9.0f} MB", flush=True)

    print(f"{'benchmark':<44} {'result':>22} {'peak RSS':>12}")
    gpt = measure(_gpt_training, loop_steps, 20, args.data)
    record("GPT2Mini training, Lightning fit loop", gpt, f"{gpt['lightning_tokens_per_s']:,.0f} tokens/s")
    print(f"{'GPT2Mini training, bare PyTorch loop':<44} {gpt['bare_tokens_per_s']:>15,.0f} tokens/s")
    print(f"{'  Lightning / bare':<44} {gpt['ratio']:>21.1%}")
    print(f"{'GPT2Mini training, bare, no checkpoints':<44} {gpt['bare_no_checkpoints_tokens_per_s']:>15,.0f} tokens/s")
    print(f"{'  Lightning / bare without checkpoints':<44} {gpt['ratio_to_no_checkpoints']:>21.1%}")
    for new_tokens, top_k in ((255, None), (255, 10), (1000, None)):
        gen = measure(_generation, new_tokens, top_k)
        how = f", top-k {top_k}" if top_k else ""
        record(f"GPT2Mini generate {new_tokens} tokens{how}, KV cache", gen, f"{gen['cache_tokens_per_s']:,.0f} tokens/s")
        print(f"{f'GPT2Mini generate {new_tokens} tokens{how}, no cache':<44} {gen['no_cache_tokens_per_s']:>15,.0f} tokens/s")
        summary = f"{gen['speedup']:.1f}x, {gen['identical_tokens']}"
        print(f"{'  cache speed-up, identical tokens':<44} {summary:>22}")
    for compile in (False, True):
        gpt_c = measure(_gpt_compile, gpt_steps, 20, compile)
        label = "GPT2Mini training step, " + ("torch.compile" if compile else "eager")
        record(label, gpt_c, f"{gpt_c['tokens_per_s']:,.0f} tokens/s")
        rows[label]["first_20_steps_s"] = gpt_c["warmup_s"]
    for compile in (False, True):
        train = measure(_ddpm_training, ddpm_steps, 3, compile)
        label = "DDPM training (configs/ddpm.yaml)" + (", torch.compile" if compile else "")
        record(label, train, f"{train['images_per_s']:,.0f} images/s")
    ddim = measure(_ddpm_sampling, 64, 50)
    record("DDPM sample 64 images, DDIM 50 steps", ddim, f"{ddim['seconds']:,.1f} s")
    ancestral = measure(_ddpm_sampling, 64, None)
    record("DDPM sample 64 images, DDPM 1000 steps", ancestral, f"{ancestral['seconds']:,.1f} s")
    print(f"{'  DDIM speed-up':<44} {ancestral['seconds'] / ddim['seconds']:>21.1f}x")
    rows["ddim_speedup"] = {"speedup": ancestral["seconds"] / ddim["seconds"]}
    observed_runs = [(GPT_RUN, "--data.data_path", args.data), (DDPM_RUN, "--data.data_dir", args.mnist)]
    for name, data_option, data in observed_runs:
        label = f"Observation overhead, {name}"
        if args.quick or (name == "ddpm" and data is None):
            print(f"{label:<44} {'skipped' + (' (--quick)' if args.quick else ' (no MNIST)'):>22}")
            continue
        overhead = measure(_observation_overhead, name, [data_option, data] if data else [])
        record(label, overhead, f"+{overhead['overhead']:.1%} wall time")
    label = "DDPM fit with max_time 1 min, whole command"
    if args.quick or args.mnist is None:
        print(f"{label:<44} {'skipped' + (' (--quick)' if args.quick else ' (no MNIST)'):>22}")
    else:
        rows[label] = _time_budget(args.mnist)
        print(f"{label:<44} {rows[label]['wall_s']:>20.1f} s", flush=True)

    rows["machine"] = {
        "processor": platform.processor() or platform.machine(),
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
        "quick": args.quick,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
