"""Make every table of measured results in README.md and docs/*.md from the JSON kept in docs/results/.

    python docs/tables.py           # rewrite the tables in place
    python docs/tables.py --check   # change nothing; exit 1 and name each table that differs from its JSON

A table stands between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is one of `TABLES` below, which
reads its JSON file(s) and returns the markdown. The same NAME may stand in several files (README and an
article): it is the same table. docs/results/README.md says which command wrote each JSON file; re-running
that command and copying its output there, then running this script, is how a figure is re-measured.
"""

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so that `python docs/tables.py` finds the lab's packages
    sys.path.insert(0, str(REPO))

from experiments.plot_scaling import fit_power_law  # noqa: E402

RESULTS = REPO / "docs" / "results"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def load(name: str) -> dict | list:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"


def duration(seconds: float) -> str:
    """2 min 16 s, or 48 s."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def variants(results: dict) -> dict:
    """An ablation.json's variants that trained (not those that failed)."""
    return {name: r for name, r in results.items() if "val_loss" in r}


# ---- GPT2Mini -------------------------------------------------------------------------------------


def shakespeare_seeds() -> str:
    seeds, no_bias = load("shakespeare_seeds.json")["baseline"], load("shakespeare_no_bias.json")["baseline"]
    rows = []
    for run in seeds["runs"]:
        label = f"seed {run['seed']} (the config's)" if run["seed"] == 1337 else f"`--seed_everything {run['seed']}`"
        rows.append([label, f"{run['val_loss']:.3f}", duration(run["wall_time_s"])])
    losses = [run["val_loss"] for run in seeds["runs"]]
    spread = f"mean {statistics.fmean(losses):.3f}, sd {statistics.stdev(losses):.3f}"
    rows.append([f"the {len(losses)} seeds", spread, ""])
    (run,) = no_bias["runs"]
    no_bias_label = "`--model.bias false` (nanoGPT has no biases)"
    rows.append([no_bias_label, f"{run['val_loss']:.3f}", duration(run["wall_time_s"])])
    return table(["run", "val loss over the whole val split after 2000 steps", "wall time"], rows)


LLAMA_SWITCHES = {
    "baseline": "baseline (GPT-2)", "rmsnorm": "`--model.norm rmsnorm`", "rope": "`--model.pos_emb rope`",
    "swiglu": "`--model.mlp swiglu`", "gqa": "`--model.n_kv_head 2`", "untied": "`--model.tie_weights false`",
    "llama": "all five",
}  # fmt: skip


def gpt2_to_llama() -> str:
    results = variants(load("gpt2_to_llama.json"))
    base = results["baseline"]["val_loss"]
    rows = []
    for name, r in results.items():
        versus = r.get("val_vs_baseline", r["val_loss"] - base) if name != "baseline" else None
        rows.append([
            LLAMA_SWITCHES.get(name, name), f"{r['val_loss']:.3f} ± {r['val_loss_sd']:.3f}",
            f"{versus:+.3f}" if versus is not None else "", f"{r['parameters']:,}", f"{r['per_s']:,.0f}",
            f"{r['kv_cache_bytes_per_token']:,}",
        ])  # fmt: skip
    columns = ["variant", "val loss (mean ± sd, 3 seeds)", "vs GPT-2", "parameters", "tokens/s", "KV cache bytes/token"]
    return table(columns, rows)


PLAN_LOSS_30_STEPS = {"baseline": "2.3", "post_ln": "3.64", "no_residual": "4.15", "no_attention": "2.78"}
VARIANT_LABELS = {"baseline": "baseline (pre-LN)"}


def ablation_gpt2_mini_30() -> str:
    rows = [
        [VARIANT_LABELS.get(name, name), f"{r['train_loss']:.3f}", f"{r['val_loss']:.3f}", PLAN_LOSS_30_STEPS[name]]
        for name, r in variants(load("ablation_gpt2_mini_30.json")).items()
    ]
    return table(["variant", "train loss", "val loss", "plan (train loss, 30 steps)"], rows)


def ablation_gpt2_mini_200() -> str:
    rows = [
        [VARIANT_LABELS.get(name, name), f"{r['train_loss']:.3f}", f"{r['val_loss']:.3f}"]
        for name, r in variants(load("ablation_gpt2_mini_200.json")).items()
    ]
    return table(["variant, 200 steps", "train loss", "val loss"], rows)


def scaling_quick() -> str:
    results = sorted(load("scaling_quick.json"), key=lambda r: r["parameters"])
    rows = [
        [r["name"], f"{r['parameters'] / 1e6:.2f}M", f"{r['non_embedding_parameters'] / 1e6:.2f}M",
         f"{r['val_loss']:.3f}", f"{r['tokens_seen']:,}", f"{r['wall_time_s']:.0f} s"]
        for r in results
    ]  # fmt: skip
    a, b, r2 = fit_power_law([r["parameters"] for r in results], [r["val_loss"] for r in results])
    columns = ["name", "parameters", "without embeddings", "val loss", "tokens seen", "wall time"]
    fit = f"\nFit: L = {a:.3f} x N^-{b:.4f} (R^2 = {r2:.3f}); the larger the model, the lower the loss.\n"
    return table(columns, rows) + fit


# ---- DDPM -----------------------------------------------------------------------------------------


def ablation_ddpm_300() -> str:
    results = variants(load("ablation_ddpm_300.json"))
    rows = [[name, f"{r['train_loss']:.4g}", f"{r['val_loss']:.4g}"] for name, r in results.items()]
    return table(["variant", "train loss", "val loss"], rows)


# The tables measured before the judge learned "not a digit" (2026-12-07): their Frechet distance, class balance
# and accuracy read outputs it kept bitwise, but their confidence is the 10-class judge's.
OLD_CONFIDENCE = "confidence (10-class judge)"


def ddpm_recipe() -> str:
    runs = load("ddpm_recipe.json")
    first, best = runs[0]["fid"], min(r["fid"] for r in runs)
    rows = []
    for r in runs:
        change = f" ({(r['fid'] - first) / first:+.0%})" if r["run"].startswith("+") else ""  # the changes kept
        fid = f"{r['fid']:.2f}{change}"
        fid = f"**{fid}**" if r["fid"] == best else fid
        rows.append([r["run"], r["settings"], f"{r['steps']:,}", f"{r['val_loss']:.4f}", fid, f"{r['confidence']:.3f}",
                     f"{r['class_balance']:.3f}"])  # fmt: skip
    columns = ["run", "settings (`--model.X`)", "steps in 20 min", "val loss", "Frechet distance", OLD_CONFIDENCE,
               "class balance"]  # fmt: skip
    return table(columns, rows)


def calibration() -> str:
    rows = [
        [re.sub(r"blurred \(Gaussian, (sigma \d)\)", r"blurred, \1", r["source"]), _fid(r["fid"]),
         f"{r['confidence']:.3f}", f"{r['class_balance']:.3f}", f"{r['accuracy']:.3f}"]
        for r in load("calibration.json")
    ]  # fmt: skip
    n = load("calibration.json")[0]["num_samples"]
    return table([f"set ({n:,} images)", "Frechet distance", "confidence", "class balance", "accuracy"], rows)


def _fid(value: float) -> str:
    """Three significant digits for the large distances, two decimals for the small ones."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _samplers(name: str) -> str:
    results = load(name)
    best = min(r["fid"] for r in results)
    rows = []
    for r in results:
        fid = f"{r['fid']:.2f}"
        sampler = re.sub(r"DDPM ancestral, (\d+) steps", lambda m: f"DDPM ancestral, {int(m[1]):,} steps", r["sampler"])
        rows.append([sampler.removesuffix(", eta 0.0"), f"**{fid}**" if r["fid"] == best else fid,
                     f"{r['confidence']:.3f}", f"{r['class_balance']:.3f}", f"{r['seconds']:,.0f}"])  # fmt: skip
    precision = "bf16" if results[0]["precision"] == "bf16-mixed" else "fp32"
    columns = [f"sampler ({results[0]['num_samples']:,} samples, {precision})", "Frechet distance", OLD_CONFIDENCE,
               "class balance", "seconds"]  # fmt: skip
    return table(columns, rows)


def samplers_min_snr() -> str:
    return _samplers("samplers_min_snr.json")


def samplers_default() -> str:
    return _samplers("samplers_default.json")


GUIDANCE_LABELS = {0.0: "0 (conditional, unguided)", 3.0: "3 (the config's)"}


def guidance() -> str:
    results = load("guidance.json")
    best_fid, best_accuracy = min(r["fid"] for r in results), max(r["accuracy"] for r in results)
    rows = []
    for r in results:
        accuracy, fid = f"{r['accuracy']:.1%}", f"{r['fid']:.2f}"
        earlier = results[: results.index(r)]
        first_best = r["accuracy"] == best_accuracy and all(o["accuracy"] != best_accuracy for o in earlier)
        rows.append([GUIDANCE_LABELS.get(r["guidance_scale"], f"{r['guidance_scale']:g}"),
                     f"**{accuracy}**" if first_best else accuracy, f"**{fid}**" if r["fid"] == best_fid else fid,
                     f"{r['confidence']:.3f}", f"{r['class_balance']:.3f}", f"{r['seconds']:,.0f}"])  # fmt: skip
    return table(["guidance scale w", "accuracy", "Frechet distance", OLD_CONFIDENCE, "class balance", "seconds"], rows)


# ---- speed and the suite --------------------------------------------------------------------------


def benchmarks() -> str:
    b = load("benchmarks.json")
    gpt, compiled = b["GPT2Mini training, Lightning fit loop"], b["GPT2Mini training step, torch.compile"]
    eager = b["GPT2Mini training step, eager"]
    ddpm, ddpm_compiled = b["DDPM training (configs/ddpm.yaml)"], b["DDPM training (configs/ddpm.yaml), torch.compile"]
    ddim, ancestral = b["DDPM sample 64 images, DDIM 50 steps"], b["DDPM sample 64 images, DDPM 1000 steps"]
    rows = [
        ["GPT2Mini training, `gpt2_mini_shakespeare` settings, Lightning fit loop (`train.py`: logging, grad norms, "
         f"update ratios, LR monitor, last.ckpt every {gpt['checkpoint_every']} steps)",
         f"{gpt['lightning_tokens_per_s']:,.0f} tokens/s", _mb(gpt)],
        [f"the same model, data, optimizer, clipping and last.ckpt every {gpt['checkpoint_every']} steps in a bare "
         "PyTorch loop", f"{gpt['bare_tokens_per_s']:,.0f} tokens/s", "(same process)"],
        ["Lightning / bare", f"{gpt['ratio']:.1%}", ""],
        ["the bare loop without any checkpoint",
         f"{gpt['bare_no_checkpoints_tokens_per_s']:,.0f} tokens/s "
         f"(Lightning / this: {gpt['ratio_to_no_checkpoints']:.1%})",
         "(same process)"],
    ]  # fmt: skip
    for tokens, what in ((255, "from one (default 4x128 model, block 256)"), (1000, "")):
        gen = b[f"GPT2Mini generate {tokens} tokens, KV cache"]
        note = ", identical tokens" if gen["identical_tokens"] else ", DIFFERENT tokens"
        if tokens > 256:
            note = " (past 256 tokens the window slides)" + note.replace(", identical tokens", "")
        rows.append([f"generate {tokens} tokens{' ' + what if what else ''}, KV cache / no cache",
                     f"{gen['cache_tokens_per_s']:,.0f} / {gen['no_cache_tokens_per_s']:,.0f} tokens/s: "
                     f"{gen['speedup']:.1f}x{note}", _mb(gen)])  # fmt: skip
    rows += [
        ["GPT2Mini training step (Shakespeare sizes), eager / `compile true`",
         f"{eager['tokens_per_s']:,.0f} / {compiled['tokens_per_s']:,.0f} tokens/s: "
         f"{compiled['tokens_per_s'] / eager['tokens_per_s']:.2f}x", f"{_mb(eager, unit=False)} / {_mb(compiled)}"],
        ["DDPM training, `configs/ddpm.yaml` (32 channels, batch 64, bf16), eager / `compile true`",
         f"{ddpm['images_per_s']:,.0f} / {ddpm_compiled['images_per_s']:,.0f} images/s: "
         f"{ddpm_compiled['images_per_s'] / ddpm['images_per_s']:.2f}x",
         f"{_mb(ddpm, unit=False)} / {_mb(ddpm_compiled)}"],
        ["DDPM sampling, 64 images, DDIM 50 steps", f"{ddim['seconds']:.1f} s", _mb(ddim)],
        ["DDPM sampling, 64 images, ancestral 1000 steps",
         f"{ancestral['seconds']:.1f} s (DDIM is {ancestral['seconds'] / ddim['seconds']:.0f}x faster)",
         _mb(ancestral)],
    ]  # fmt: skip
    watched = {
        "gpt2_mini_shakespeare": ("attention maps, residual stream, logit lens, update ratios", "`gpt2_mini_shakespeare`"),
        "ddpm": ("loss by noise level, trajectory, update ratios", "`configs/ddpm.yaml`"),
    }
    for run, (what, where) in watched.items():
        o = b.get(f"Observation overhead, {run}")
        if o is not None:
            interval = o["fit_s"] - o["observing_s"]
            result = f"+{o['overhead']:.1%} wall time ({o['observing_s']:.2f} s of a {interval:.1f} s validation interval)"
            rows.append([f"observation ({what}), {where}", result, _mb(o)])
    budget = b.get("DDPM fit with max_time 1 min, whole command")
    if budget is not None:
        what = f"`configs/ddpm.yaml` fit given `--trainer.max_time` of {budget['budget_s']} s: the whole command"
        rows.append([f"{what}, start-up and final validation included", f"{budget['wall_s']:.1f} s", "(own process)"])
    return table(["benchmark", "result", "peak memory"], rows)


def _mb(result: dict, unit: bool = True) -> str:
    return f"{result['peak_rss_mb']:,.0f}" + (" MB" if unit else "")


def test_suite() -> str:
    suite = load("test_suite.json")
    rows = [[f"`{run['command']}`", f"{run['passed']:,}", duration(run["seconds"])] for run in suite["runs"]]
    return table(["command", "tests passed", "wall time"], rows)


TABLES: dict[str, Callable[[], str]] = {
    fn.__name__.replace("_", "-"): fn
    for fn in (shakespeare_seeds, gpt2_to_llama, ablation_gpt2_mini_30, ablation_gpt2_mini_200, scaling_quick,
               ablation_ddpm_300, ddpm_recipe, calibration, samplers_min_snr, samplers_default, guidance, benchmarks,
               test_suite)  # fmt: skip
}


def render(text: str, path: Path) -> str:
    """The document with every table block made afresh from its JSON."""

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"error: {_shown(path)} has a table block {name!r}; known: {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)

    return BLOCK.sub(fill, text)


def stale(documents: list[Path] = DOCUMENTS) -> list[str]:
    """`file: table` for each table whose text differs from what its JSON gives."""
    found = []
    for path in documents:
        text = path.read_text(encoding="utf-8")
        for before, after in zip(BLOCK.finditer(text), BLOCK.finditer(render(text, path))):
            if before["body"] != after["body"]:
                found.append(f"{_shown(path)}: {before['name']}")
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs from its JSON")
    args = parser.parse_args(argv)
    if args.check:
        differing = stale()
        if differing:
            listed = "\n  ".join(differing)
            sys.exit(f"error: tables that differ from their JSON (run python docs/tables.py):\n  {listed}")
        print("Every table matches its JSON.")
        return
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        updated = render(text, path)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            print(f"Rewrote the tables of {_shown(path)}")


if __name__ == "__main__":
    main()
