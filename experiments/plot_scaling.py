"""The scaling experiment's two figures, drawn from its results and fits (experiments.scaling calls these)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.scaling_laws import Law, PowerLaw, bits, local_parabola  # noqa: E402


def _save(fig: plt.Figure, output: Path) -> None:
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)


def plot_law(results: list[dict], fit: dict, output: Path) -> None:
    """Loss against size with every seed, the power law, the law with a floor fitted without the largest size,
    and the largest size's prediction (with its interval) beside its measurement."""
    runs = [r for r in results if r["experiment"] == "sizes"]
    n = np.array([r["non_embedding_parameters"] for r in runs], dtype=float)
    loss = np.array([r["val_loss"] for r in runs])
    held = fit["held_out"]
    seen = n != held["parameters"]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.plot(n[seen], loss[seen], "o", color="C0", alpha=0.7, label="fitted runs (each seed)")
    ax.plot(
        n[~seen],
        loss[~seen],
        "*",
        color="C3",
        markersize=12,
        label=f"held out: {held['name']} (each seed)",
    )
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 200)
    power = PowerLaw(**fit["power_law"])
    ax.plot(
        grid,
        power(grid),
        ":",
        color="gray",
        label=f"power law, all sizes: {power.a:.2f}·N^-{power.b:.3f}",
    )
    law = Law(**held["law"])
    ax.plot(grid, law(grid), "-", color="C0",
            label=f"fit without {held['name']}: {law.E:.2f} + {law.A:.3g}·N^-{law.alpha:.2f}")  # fmt: skip
    ax.axhline(
        law.E,
        color="C0",
        linestyle="--",
        linewidth=0.8,
        label=f"its irreducible loss E = {law.E:.2f}",
    )
    lo, hi = held["interval"]
    ax.errorbar([held["parameters"]], [held["predicted"]], yerr=[[held["predicted"] - lo], [hi - held["predicted"]]],
                fmt="s", color="C1", capsize=4,
                label=f"predicted {held['predicted']:.3f} [{lo:.3f}, {hi:.3f}], measured {held['measured']:.3f}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("validation loss (nats a character)")
    right = ax.secondary_yaxis("right", functions=(bits, lambda b: b * np.log(2)))
    right.set_ylabel("bits a character")
    ax.set_title(f"Loss against size, {runs[0]['tokens_seen']:,} tokens each")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7.5)
    _save(fig, output)


def plot_isoflop(results: list[dict], fit: dict, output: Path) -> None:
    """Left: loss against size at each compute budget, with the parabola that finds its best size.
    Right: the best size and tokens against the budget, with their power laws."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    budgets = fit["isoflop"]["budgets"]
    for i, budget in enumerate(budgets):
        runs = sorted(
            (r for r in results if r["budget"] == budget["flops"]),
            key=lambda r: r["non_embedding_parameters"],
        )
        n = np.array([r["non_embedding_parameters"] for r in runs], dtype=float)
        loss = np.array([r["val_loss"] for r in runs])
        left.plot(n, loss, "o", color=f"C{i}", label=f"C = {budget['flops']:.0e} FLOPs")
        left.plot(n, loss, "-", color=f"C{i}", alpha=0.3)
        if budget["interior"]:  # the parabola through the best size and its neighbours, and its vertex
            best = int(np.argmin(loss))
            coefficients = local_parabola(list(n), list(loss))
            grid = np.geomspace(n[best - 1], n[best + 1], 50)
            left.plot(grid, np.polyval(coefficients, np.log(grid)), "-", color=f"C{i}", linewidth=2)
            vertex = np.polyval(coefficients, np.log(budget["best_parameters"]))
            left.plot([budget["best_parameters"]], [vertex], "v", color="black", markersize=9)
        else:
            left.plot([budget["best_parameters"]], [loss.min()], "x", color="black", markersize=9)
    left.set_xscale("log")
    left.set_xlabel("non-embedding parameters N")
    left.set_ylabel("validation loss (nats a character)")
    left.set_title("isoFLOP curves (▼ best size; x: at the edge of the sizes trained)")
    left.grid(which="both", alpha=0.3)
    left.legend(fontsize=8)
    flops = np.array([b["flops"] for b in budgets])
    for key, exponent, color, label in (
        ("best_parameters", "a", "C0", "N_opt"),
        ("best_tokens", "b", "C1", "D_opt"),
    ):
        values = np.array([b[key] for b in budgets])
        right.plot(flops, values, "o", color=color)
        if fit["isoflop"][exponent] is not None:
            slope, intercept = np.polyfit(np.log(flops), np.log(values), 1)
            grid = np.geomspace(flops.min(), flops.max(), 50)
            right.plot(
                grid,
                np.exp(intercept) * grid**slope,
                "-",
                color=color,
                label=f"{label} ∝ C^{slope:.2f}",
            )
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("compute C = 6ND (FLOPs)")
    right.set_ylabel("parameters / tokens")
    right.set_title("Compute-optimal size and data (Chinchilla: both ∝ C^0.5)")
    right.grid(which="both", alpha=0.3)
    if fit["isoflop"]["a"] is not None:  # two budgets or more: the power laws are drawn
        right.legend(fontsize=8)
    _save(fig, output)
