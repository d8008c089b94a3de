"""Regenerate the figures in docs/ that do not come from a training run.

Run it from the repository root:

    python docs/make_figures.py                              # MNIST from ./data/MNIST/raw, if it is there
    python docs/make_figures.py --mnist-root ../shared/data  # or from any folder holding MNIST/raw/

It writes, into docs/figures/ (or --out):

- noise_schedules.png  alpha-bar(t) and the signal-to-noise ratio of the `linear` and `cosine` schedules
- forward_process.png  one MNIST test digit noised by `NoiseSchedule.q_sample` at six timesteps, per schedule
- attention_mask.png   the causal mask, and one head's attention weights in an untrained GPT2Mini

All three use the lab's own classes (`NoiseSchedule`, `GPT2Mini`, `CausalSelfAttention`); nothing is
trained, and the script finishes in seconds on a CPU. MNIST is read with download=False: without the files
the forward-process figure uses a drawn ring instead, and says so. The ablation, scaling and sample figures
come from experiment runs (see the articles), not from this script.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so that `python docs/make_figures.py` finds the lab's packages
    sys.path.insert(0, str(REPO))

from lightning_modules.gpt2_mini import GPT2Mini  # noqa: E402
from lightning_modules.noise_schedule import NoiseSchedule  # noqa: E402

DPI = 110
SCHEDULES = ("linear", "cosine")
TIMESTEPS_SHOWN = (0, 100, 250, 500, 750, 999)
ATTENTION_TEXT = "To be, or not to be"


def noise_schedules(out: Path) -> Path:
    """alpha-bar(t) on a linear axis, and SNR(t) = alpha-bar / (1 - alpha-bar) on a log axis."""
    fig, (ax_ab, ax_snr) = plt.subplots(1, 2, figsize=(9, 3.6))
    for kind in SCHEDULES:
        schedule = NoiseSchedule(kind, timesteps=1000)
        t = torch.arange(schedule.timesteps)
        alpha_bar = schedule.alphas_cumprod
        ax_ab.plot(t, alpha_bar, label=kind)
        ax_snr.semilogy(t, alpha_bar / (1 - alpha_bar), label=kind)
    ax_ab.set_title(r"$\bar\alpha_t$: share of the signal's variance left")
    ax_ab.set_xlabel("timestep t")
    ax_ab.set_ylim(-0.02, 1.02)
    ax_snr.set_title(r"signal-to-noise ratio $\bar\alpha_t / (1 - \bar\alpha_t)$")
    ax_snr.set_xlabel("timestep t")
    for ax in (ax_ab, ax_snr):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = out / "noise_schedules.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def load_digit(mnist_root: str) -> tuple[torch.Tensor, str]:
    """The first MNIST test digit in [-1, 1] (1, 28, 28), as the lab's MNISTDataModule scales it.

    Without MNIST, a drawn ring of the same size, so the figure can still be made.
    """
    try:
        from torchvision.datasets import MNIST

        test_set = MNIST(root=mnist_root, train=False, download=False)
        x = test_set.data[0].float().view(1, 28, 28) / 255.0  # uint8 [0, 255] -> [0, 1]
        return x * 2 - 1, f"MNIST test digit 0 (a {int(test_set.targets[0])})"
    except (RuntimeError, OSError) as err:
        print(f"MNIST not found under {mnist_root}/MNIST/raw ({err.__class__.__name__}); "
              "using a synthetic ring instead of a digit.")  # fmt: skip
        yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        r = ((yy - 13.5) ** 2 + (xx - 13.5) ** 2).sqrt()
        ring = ((r - 8).abs() < 2.2).float()
        return (ring * 2 - 1).view(1, 28, 28), "a synthetic ring (MNIST not found)"


def forward_process(out: Path, mnist_root: str) -> Path:
    """x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps for a few t; the same eps for both rows."""
    x0, source = load_digit(mnist_root)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(len(SCHEDULES), len(TIMESTEPS_SHOWN), figsize=(8.4, 4.3))
    for row, kind in enumerate(SCHEDULES):
        schedule = NoiseSchedule(kind, timesteps=1000)
        for col, step in enumerate(TIMESTEPS_SHOWN):
            t = torch.tensor([step])
            x_t = schedule.q_sample(x0[None], t, noise[None])[0, 0]
            ax = axes[row, col]
            ax.imshow(x_t, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ab = float(schedule.alphas_cumprod[step])
            ax.set_title(f"t={step}\n" + r"$\bar\alpha$=" + f"{ab:.3g}", fontsize=8)
            if col == 0:
                ax.set_ylabel(kind, fontsize=10)
    fig.suptitle(f"q(x_t | x_0) for {source}, same noise in both rows", fontsize=10)
    fig.tight_layout()
    path = out / "forward_process.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


@torch.no_grad()
def attention_mask(out: Path) -> Path:
    """The causal mask and head 0 of the first block's attention in an untrained, seeded GPT2Mini."""
    torch.manual_seed(0)
    chars = sorted(set(ATTENTION_TEXT))
    model = GPT2Mini(vocab_size=len(chars), n_layer=2, n_head=4, n_embd=64, block_size=32, dropout=0.0, chars=chars)
    model.eval()
    idx = torch.tensor([model.tokenizer.encode(ATTENTION_TEXT)])
    T = idx.size(1)
    weights = model.gpt.trace(idx, attention=True).attention[0][0, 0]  # (T, T): block 0, head 0
    mask = model.gpt.blocks[0].attn.causal_mask[0, 0, :T, :T].float()

    labels = [repr(c)[1:-1] if c != " " else "␣" for c in ATTENTION_TEXT]
    fig, (ax_m, ax_w) = plt.subplots(1, 2, figsize=(9.4, 4.4))
    ax_m.imshow(mask, cmap="Greys", vmin=0, vmax=1.6)
    ax_m.set_title("causal_mask: 1 = may attend")
    im = ax_w.imshow(weights, cmap="viridis", vmin=0)
    ax_w.set_title("untrained GPT2Mini, block 0, head 0:\nattention_weights (rows sum to 1)", fontsize=10)
    fig.colorbar(im, ax=ax_w, fraction=0.046, pad=0.04)
    for ax in (ax_m, ax_w):
        ax.set_xticks(range(T), labels, fontsize=7)
        ax.set_yticks(range(T), labels, fontsize=7)
        ax.set_xlabel("key position (attended to)")
        ax.set_ylabel("query position (attending)")
    fig.tight_layout()
    path = out / "attention_mask.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-root", default="data", help="folder holding MNIST/raw/ (default: data)")
    parser.add_argument("--out", default=str(REPO / "docs" / "figures"), help="where to write the PNGs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in (noise_schedules(out), forward_process(out, args.mnist_root), attention_mask(out)):
        print(f"Wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
