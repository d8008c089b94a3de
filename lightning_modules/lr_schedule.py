"""Learning-rate multiplier for linear warm-up followed by cosine decay (used through `LambdaLR`)."""

import math


def warmup_cosine(step: int, warmup_steps: int, decay_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step`.

    Rises linearly to 1 over `warmup_steps`, follows a half cosine down to `min_lr_ratio` at `decay_steps`,
    then stays there (so training past the planned length never raises the rate again).
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if step >= decay_steps:
        return min_lr_ratio
    progress = (step - warmup_steps) / max(1, decay_steps - warmup_steps)
    return min_lr_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - min_lr_ratio)
