"""Which part of a trained DDPM's U-Net matters at which noise level: switch one off for one band of t, at sampling.

Every intervention draws the same samples (same seed, so the same starting noise) as the baseline, with one
part of the U-Net (`lightning_modules.unet.switch_off`: the time embedding, or one level's skip connection)
zeroed at the sampler steps whose t falls in one band, and is scored by the lab's judge (`SampleQuality`):
any change in the Frechet distance, the confidence or the grid is that part's work in that band.
"""

import sys
import time
from pathlib import Path

from torchvision.utils import save_image

from errors import UserInputError
from lightning_modules import DDPM
from lightning_modules.unet import switch_off, switchable_parts
from metrics import SampleQuality, draw_samples

GRID_IMAGES = 64  # the first samples of each set, as an 8x8 grid: the same noise in every grid, digit for digit


def ddpm_interventions(
    model: DDPM,
    metric: SampleQuality,
    out: Path,
    num_samples: int,
    steps: int,
    bands: int,
    seed: int = 0,
    precision: str = "32",
) -> dict:
    """The baseline and every part x band of `model` scored on `num_samples` DDIM-`steps` samples, a grid PNG
    each in `out`; the result as `intervene.json` holds it. `bands` equal slices of [0, timesteps);
    `precision` as in `draw_samples`."""
    timesteps = model.hparams.timesteps
    if not 1 <= bands <= timesteps:
        raise UserInputError(f"bands must be between 1 and the model's timesteps ({timesteps}), got {bands}.")
    if num_samples < 2:
        raise UserInputError(f"num_samples must be at least 2 (a Frechet distance needs a spread), got {num_samples}.")
    out.mkdir(parents=True, exist_ok=True)
    edges = [i * timesteps // bands for i in range(bands + 1)]
    start = time.perf_counter()

    def run(name: str) -> dict:
        """Draw, score and save one set, with whatever intervention is in place."""
        began = time.perf_counter()
        images, labels = draw_samples(model, num_samples, steps, seed=seed, precision=precision)
        score = metric.score(images, labels)
        save_image(images[:GRID_IMAGES], out / f"ddpm_{name}.png", nrow=8)
        seconds = time.perf_counter() - began
        print(
            f"{name}: fid {score['fid']:.2f}, confidence {score['confidence']:.3f} ({seconds:.0f} s)", file=sys.stderr
        )
        return {**score, "grid": f"ddpm_{name}.png"}

    result = {"kind": "ddpm", "num_samples": num_samples, "steps": steps, "precision": precision, "seed": seed}
    result["baseline"] = run("baseline")
    result["interventions"] = []
    for part in switchable_parts(model.unet):
        for t_lo, t_hi in zip(edges, edges[1:]):
            with switch_off(model.unet, part, (t_lo, t_hi)):
                entry = run(f"{part}_t{t_lo}-{t_hi}")
            result["interventions"].append({"part": part, "band": [t_lo, t_hi], **entry})
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def ddpm_markdown(result: dict) -> str:
    """A table of Frechet distance / confidence (rows: part, columns: band) and which band hurt each part most."""
    base = result["baseline"]
    bands = list(dict.fromkeys(tuple(e["band"]) for e in result["interventions"]))
    parts = list(dict.fromkeys(e["part"] for e in result["interventions"]))
    cells = {(e["part"], tuple(e["band"])): e for e in result["interventions"]}
    lines = [
        f"Frechet distance / confidence on {result['num_samples']:,} DDIM-{result['steps']} samples "
        f"({result['seconds']:.0f} s); baseline {base['fid']:.2f} / {base['confidence']:.3f}.",
        "",
        "| switched off | " + " | ".join(f"t {lo}-{hi}" for lo, hi in bands) + " |",
        "|---|" + "---|" * len(bands),
    ]
    for part in parts:
        row = [f"{cells[part, band]['fid']:.2f} / {cells[part, band]['confidence']:.3f}" for band in bands]
        lines.append(f"| {part} | " + " | ".join(row) + " |")
    lines.append("")
    for part in parts:
        worst = max(bands, key=lambda band: cells[part, band]["fid"])
        fid = cells[part, worst]["fid"]
        lines.append(
            f"- {part} hurt most at t {worst[0]}-{worst[1]}: Frechet distance {fid:.2f} against {base['fid']:.2f}."
        )
    return "\n".join(lines) + "\n"
