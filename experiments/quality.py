"""Score generated digits with the lab's MNIST classifier: Frechet distance, confidence, class balance (JSON).

    python -m experiments.quality CKPT --num_samples 1000 --steps 50 --data ../shared/data
    python -m experiments.quality CKPT --steps ancestral 100 50 20 10     # compare samplers, with their times
    python -m experiments.quality CKPT --precision bf16-mixed     # bf16 autocast: faster on CPUs with AMX
    python -m experiments.quality CKPT --guidance_scale 0 1 3 5 --plot guidance.png   # conditional: also accuracy
    python -m experiments.quality path/to/samples.pt --data ../shared/data   # what `train.py predict` wrote
    python -m experiments.quality --calibrate --num_samples 1000 --data ../shared/data

The reference is the MNIST test set (10,000 digits) under --data, the folder that holds MNIST/raw/.
A checkpoint's samples come from its saved weights (the EMA average when the run kept one), drawn from
--seed; a conditional model draws the digits in turn (0, 1, ..., 9, 0, ...) and reports the share drawn as
the digit asked for. `--calibrate` scores sets whose quality is known instead (real training digits, the
same with Gaussian noise of growing strength, blurred; uniform noise, Gaussian noise, blanks, checkerboards and
dots with no digit), so that a model's score can be read against them.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib
import torch
from torchvision.transforms.v2.functional import gaussian_blur

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from checkpoints import read_checkpoint  # noqa: E402
from datamodules import MNISTDataModule  # noqa: E402
from datamodules.non_digits import non_digits  # noqa: E402
from errors import UserInputError  # noqa: E402
from lightning_modules import DDPM  # noqa: E402
from lightning_modules.mnist_classifier import WEIGHTS, MNISTClassifier  # noqa: E402
from metrics import SampleQuality, draw_samples  # noqa: E402

NOISE_LEVELS = (0.05, 0.1, 0.2, 0.4)  # standard deviations of the Gaussian noise added to real digits, in [0, 1] units


def mnist(data_dir: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One MNIST split's digits (N, 1, 28, 28) in [0, 1] and labels (N,); a clear error when files are missing."""
    return MNISTDataModule(data_dir=data_dir, download=False).digits(train)


def reference_metric(data_dir: str, classifier: str) -> SampleQuality:
    """A `SampleQuality` holding the MNIST test set as its reference."""
    metric = SampleQuality(MNISTClassifier.pretrained(classifier))
    metric.add_reference(mnist(data_dir, train=False)[0])
    return metric


def score_checkpoint(path: Path, metric: SampleQuality, args: argparse.Namespace) -> list[dict]:
    """One result per sampler (`--steps`) and, for a conditional model, per guidance scale."""
    read_checkpoint(path, model="DDPM")
    model = DDPM.load_from_checkpoint(path, map_location=args.device)
    scales = args.guidance_scale if model.conditional and args.guidance_scale else [None]
    results = []
    for steps in args.steps:
        for scale in scales:
            start = time.perf_counter()
            images, labels = draw_samples(model, args.num_samples, steps, args.eta, args.seed, scale, args.precision)
            seconds = time.perf_counter() - start
            ancestral = f"DDPM ancestral, {model.hparams.timesteps} steps"
            sampler = ancestral if steps is None else f"DDIM, {steps} steps, eta {args.eta}"
            result = {"source": str(path), "sampler": sampler, "precision": args.precision}
            result |= metric.score(images, labels)
            result["seconds"] = round(seconds, 1)
            if model.conditional:
                result["guidance_scale"] = scale if scale is not None else model.guidance_scale
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)  # progress, as each one finishes
    return results


def plot_guidance(results: list[dict], path: Path) -> None:
    """The quality/diversity trade of guidance: accuracy against Frechet distance, a point per guidance scale."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r["fid"] for r in results], [r["accuracy"] for r in results], marker="o")
    for r in results:
        point = (r["fid"], r["accuracy"])
        ax.annotate(f"w = {r['guidance_scale']:g}", point, textcoords="offset points", xytext=(6, -12))
    ax.set_xlabel(f"Frechet distance to MNIST test digits ({results[0]['num_samples']:,} samples; lower is better)")
    ax.set_ylabel("accuracy: drawn as the digit asked for")
    ax.set_title("Classifier-free guidance")
    ax.margins(0.15)  # room for the labels
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def score_tensor(path: Path, metric: SampleQuality) -> dict:
    images = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1:] != (1, 28, 28):
        raise UserInputError(f"{path} does not hold (N, 1, 28, 28) images, as `train.py predict` writes samples.pt.")
    labels_file = path.with_name("labels.pt")
    labels = torch.load(labels_file, weights_only=True) if labels_file.is_file() else None
    return {"source": str(path), **metric.score(images.float(), labels)}


def calibrate(metric: SampleQuality, args: argparse.Namespace) -> list[dict]:
    """Scores of sets whose quality is known: real training digits, then worse and worse versions of them."""
    train_images, train_labels = mnist(args.data, train=True)
    chosen = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(args.seed))[: args.num_samples]
    real, labels = train_images[chosen], train_labels[chosen]
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(args.seed))
    sets = {"real training digits": real}
    for std in NOISE_LEVELS:
        sets[f"+ Gaussian noise, std {std}"] = (real + std * noise).clamp(0, 1)
    sets["blurred (Gaussian, sigma 1)"] = gaussian_blur(real, kernel_size=[7, 7], sigma=[1.0, 1.0])
    sets["blurred (Gaussian, sigma 2)"] = gaussian_blur(real, kernel_size=[9, 9], sigma=[2.0, 2.0])
    sets["uniform noise"] = torch.rand(real.shape, generator=torch.Generator().manual_seed(args.seed))
    for kind in ("Gaussian noise", "blank", "checkerboard"):  # no digit at all, as the judge was taught
        sets[f"{kind} (no digit)"] = non_digits(len(real), kind, torch.Generator().manual_seed(args.seed))
    salt = torch.rand(real.shape, generator=torch.Generator().manual_seed(args.seed)) > 0.9
    sets["salt-and-pepper dots (no digit, a kind it was not taught)"] = salt.float()
    return [{"source": name, **metric.score(images, labels)} for name, images in sets.items()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="a DDPM checkpoint (.ckpt) or samples (.pt) to score")
    parser.add_argument("--calibrate", action="store_true", help="score known sets instead (see above)")
    parser.add_argument("--data", default="data", help="the folder that holds MNIST/raw/ (default: data)")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--steps", nargs="+", default=["50"],
                        help="DDIM steps, or `ancestral` for the full sampler; several compare samplers")  # fmt: skip
    parser.add_argument("--eta", type=float, default=0.0)
    parser.add_argument("--precision", choices=["32", "bf16-mixed"], default="32",
                        help="sample in fp32, or under bf16 autocast (about 2x faster on CPUs with AVX-512 bf16 "
                             "or AMX; Frechet distances within 3%% of fp32 here, see docs/ddpm.md)")  # fmt: skip
    parser.add_argument("--guidance_scale", type=float, nargs="+",
                        help="classifier-free guidance, one or several to compare (default: the model's)")  # fmt: skip
    parser.add_argument("--plot", help="with several guidance scales: draw accuracy against Frechet distance here")
    parser.add_argument("--out", help="also write the JSON printed to this file (docs/results/ keeps the measured ones)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier", default=str(WEIGHTS), help="the judge's weights (default: the shipped ones)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if (args.source is None) == (not args.calibrate):
        parser.error("give a checkpoint or samples file to score, or --calibrate")
    if args.num_samples < 2:
        parser.error(f"--num_samples must be at least 2 (a Frechet distance needs a spread), got {args.num_samples}")
    try:
        args.steps = [None if s == "ancestral" else int(s) for s in args.steps]
    except ValueError:
        parser.error(f"--steps takes whole numbers or `ancestral`, got {' '.join(args.steps)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        metric = reference_metric(args.data, args.classifier)
        if args.calibrate:
            results = calibrate(metric, args)
        elif Path(args.source).suffix == ".pt":
            results = [score_tensor(Path(args.source), metric)]
        else:
            results = score_checkpoint(Path(args.source), metric, args)
    except UserInputError as err:
        sys.exit(f"error: {err}")
    if args.plot and all("accuracy" in r for r in results):
        plot_guidance(results, Path(args.plot))
    text = json.dumps(results[0] if len(results) == 1 else results, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
