"""Images that are not digits, for teaching the lab's judge to say so.

A classifier trained on digits alone must call everything some digit, and often does so with certainty: the
shipped judge gave uniform noise a confidence of 0.99999. `MNISTClassifier(not_a_digit=True)` learns an
eleventh class from these, drawn fresh for every batch.
"""

import torch
import torch.nn.functional as F

KINDS = ("uniform noise", "Gaussian noise", "blank", "checkerboard", "blotches")


def non_digits(n: int, kind: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` images (n, 1, 28, 28) in [0, 1] of one of `KINDS`, or of all of them in turn when `kind` is None.

    Each kind varies in what a digit never varies in: the level and spread of the noise, the shade of the
    blank, the size, phase and contrast of the checkerboard's cells, the size and threshold of the blotches.
    """
    if kind is None:
        kinds = [KINDS[i % len(KINDS)] for i in range(n)]
        images = torch.empty(n, 1, 28, 28)
        for name in KINDS:
            chosen = [i for i, k in enumerate(kinds) if k == name]
            if chosen:
                images[chosen] = non_digits(len(chosen), name, generator)
        return images
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    if kind == "uniform noise":
        return uniform(n, 1, 28, 28)
    if kind == "Gaussian noise":
        mean, std = 0.2 + 0.6 * uniform(n, 1, 1, 1), 0.1 + 0.4 * uniform(n, 1, 1, 1)
        return (mean + std * torch.randn(n, 1, 28, 28, generator=generator)).clamp(0, 1)
    if kind == "blank":
        return uniform(n, 1, 1, 1).expand(n, 1, 28, 28).clone()
    if kind == "checkerboard":
        size = torch.randint(1, 8, (n, 1, 1, 1), generator=generator)
        rows, cols = torch.arange(28).view(1, 1, 28, 1), torch.arange(28).view(1, 1, 1, 28)
        shift = torch.randint(0, 8, (n, 2, 1, 1), generator=generator)
        cells = ((rows + shift[:, :1]) // size + (cols + shift[:, 1:]) // size) % 2
        low, high = 0.5 * uniform(n, 1, 1, 1), 0.5 + 0.5 * uniform(n, 1, 1, 1)
        return torch.where(cells.bool(), high, low)
    # Blotches: smooth random shapes of ink, from coarse noise enlarged and cut at a random level.
    sizes = torch.randint(3, 8, (n,), generator=generator).tolist()
    smooth = torch.cat([F.interpolate(uniform(1, 1, s, s), size=28, mode="bicubic") for s in sizes])
    level = 0.3 + 0.4 * uniform(n, 1, 1, 1)
    return (smooth > level).float()
