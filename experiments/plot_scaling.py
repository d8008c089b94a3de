"""Plot val loss against parameter count on log-log axes, with the fitted power law L = a * N^-b.

    python -m experiments.plot_scaling runs/scaling/scaling_results.json --output scaling.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402


def fit_power_law(n: list[float], loss: list[float]) -> tuple[float, float, float]:
    """Least squares in log-log space: log L = log a - b log N. Returns (a, b, R^2 of the log fit)."""
    if len(n) < 2:
        raise ValueError("A power law needs at least two points.")
    log_n, log_l = np.log(np.asarray(n, dtype=float)), np.log(np.asarray(loss, dtype=float))
    slope, intercept = np.polyfit(log_n, log_l, 1)
    predicted = intercept + slope * log_n
    ss_res = float(np.sum((log_l - predicted) ** 2))
    ss_tot = float(np.sum((log_l - log_l.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return float(np.exp(intercept)), float(-slope), r2


def plot(results: list[dict], output: Path) -> tuple[float, float, float]:
    results = sorted(results, key=lambda r: r["parameters"])
    n = [r["parameters"] for r in results]
    loss = [r["val_loss"] for r in results]
    a, b, r2 = fit_power_law(n, loss)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.loglog(n, loss, "o", markersize=8, label="measured")
    for r in results:
        ax.annotate(r["name"], (r["parameters"], r["val_loss"]), textcoords="offset points", xytext=(6, 6))
    grid = np.geomspace(min(n) / 1.5, max(n) * 1.5, 100)
    ax.loglog(grid, a * grid**-b, "--", label=f"L = {a:.2f} x N^-{b:.3f}  (R^2 = {r2:.3f})")
    # Label the measured points themselves: a loss range inside one decade gets no useful log ticks.
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ax.set_xticks(n, labels=[f"{v / 1e6:.2f}M" for v in n])
    ax.set_yticks(loss, labels=[f"{v:.2f}" for v in loss])
    ax.set_xlabel("parameters N")
    ax.set_ylabel("validation loss L")
    ax.set_title(f"GPT2Mini scaling ({results[0]['steps']} steps per size)")
    ax.grid(which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return a, b, r2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="scaling_results.json written by experiments.scaling")
    parser.add_argument("--output", default="scaling_plot.png")
    args = parser.parse_args(argv)
    path = Path(args.results)
    if not path.is_file():
        parser.error(f"{path} not found: run python -m experiments.scaling first")
    results = json.loads(path.read_text())
    if len(results) < 2:
        parser.error(f"{path} has {len(results)} finished size(s); a fit needs at least two")
    a, b, r2 = plot(results, Path(args.output))
    for r in sorted(results, key=lambda r: r["parameters"]):
        print(f"{r['name']:>7}: {r['parameters'] / 1e6:6.2f}M parameters, val loss {r['val_loss']:.3f}")
    print(f"Fit: L = {a:.3f} x N^-{b:.4f}  (R^2 = {r2:.4f})")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
