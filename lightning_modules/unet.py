"""The U-Net that predicts the noise in x_t, written out by hand: time embedding, ResBlock, down/up sampling.

These are plain `nn.Module`s with no training logic and no knowledge of the noise schedule; `DDPM` owns
one. The layout follows Ho et al. 2020 (itself after PixelCNN++) without the attention layers, which
28x28 digits do not need: each resolution level has two ResBlocks, the way down keeps each level's output
as a skip connection, and the way up concatenates it back in.
"""

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from errors import UserInputError

NORM_GROUPS = 8


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups, so each group spans several channels even in a 32-channel U-Net.

    (DDPM's 32 groups suit its 128+ channels; here they would leave one channel per group.) The gcd makes
    the group count divide any channel count.
    """
    return nn.GroupNorm(math.gcd(NORM_GROUPS, channels), channels)


class SinusoidalTimeEmbedding(nn.Module):
    """Timestep t -> a vector of sines and cosines at geometric frequencies, as the Transformer encodes positions.

    Nearby timesteps get similar vectors and every timestep a distinct one, which the MLP after it can read.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2 != 0:
            raise UserInputError(
                f"The time embedding pairs sines with cosines, so its size (the U-Net's base_channels) must be "
                f"even, got {dim}."
            )
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) integer timesteps -> (B, dim)."""
        angles = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """Two conv3x3 layers with the timestep added in between, and a residual connection around them.

    GroupNorm, SiLU, conv; + a projection of the time embedding (one value per channel); GroupNorm, SiLU,
    dropout, conv. The input is added back, through a 1x1 conv when the channel count changes.
    - `time_dim=None`: the block takes no embedding (the U-Net's `disable_time_emb`, when it has no classes either).
    - `disable_residual`: the block outputs the conv path alone, without adding its input back.
    """

    def __init__(
        self, in_ch: int, out_ch: int, time_dim: int | None, dropout: float = 0.0, disable_residual: bool = False
    ) -> None:
        super().__init__()
        self.disable_residual = disable_residual
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_ch) if time_dim is not None else None
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, kernel_size=1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_proj is not None:
            h = h + self.time_proj(F.silu(t_emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h if self.disable_residual else self.skip(x) + h


class Downsample(nn.Module):
    """Halves the resolution with a learned stride-2 conv3x3."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Doubles the resolution (nearest neighbour), then a conv3x3 that smooths it and sets the channel count."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """One level on the way down: two ResBlocks, whose output is the skip, then a Downsample (except at the bottom)."""

    def __init__(
        self, in_ch: int, ch: int, time_dim: int | None, dropout: float, disable_residual: bool, downsample: bool
    ) -> None:
        super().__init__()
        self.res1 = ResBlock(in_ch, ch, time_dim, dropout, disable_residual)
        self.res2 = ResBlock(ch, ch, time_dim, dropout, disable_residual)
        self.downsample = Downsample(ch) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (input to the next level, skip for the way up)."""
        skip = self.res2(self.res1(x, t_emb), t_emb)
        return self.downsample(skip), skip


class MidBlock(nn.Module):
    """Two ResBlocks at the lowest resolution, where each pixel sees the most of the image."""

    def __init__(self, ch: int, time_dim: int | None, dropout: float, disable_residual: bool) -> None:
        super().__init__()
        self.res1 = ResBlock(ch, ch, time_dim, dropout, disable_residual)
        self.res2 = ResBlock(ch, ch, time_dim, dropout, disable_residual)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor | None) -> torch.Tensor:
        return self.res2(self.res1(x, t_emb), t_emb)


class UpBlock(nn.Module):
    """One level on the way up: ResBlock(2ch -> ch) on [x, skip], a ResBlock, then an Upsample to `out_ch`.

    The Upsample's conv also sets the channels to the next level's, so every level's first ResBlock sees
    its own width twice: once from below and once from the skip.
    """

    def __init__(
        self, ch: int, out_ch: int, time_dim: int | None, dropout: float, disable_residual: bool, upsample: bool
    ) -> None:
        super().__init__()
        self.res1 = ResBlock(2 * ch, ch, time_dim, dropout, disable_residual)
        self.res2 = ResBlock(ch, ch, time_dim, dropout, disable_residual)
        self.upsample = Upsample(ch, out_ch) if upsample else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor, t_emb: torch.Tensor | None) -> torch.Tensor:
        h = self.res1(torch.cat([x, skip], dim=1), t_emb)
        return self.upsample(self.res2(h, t_emb))


class UNet(nn.Module):
    """eps_theta(x_t, t, y): an image, its timestep and optionally its class in, a same-shaped noise prediction out.

    Level i works at 1 / 2**i of the input's resolution with base_channels * channel_mults[i] channels,
    so channel_mults (1, 2, 2) on 28x28 images gives levels at 28, 14 and 7 pixels.
    - `disable_residual`: every ResBlock drops its residual connection (the U-Net's skips stay).
    - `disable_time_emb`: the network never sees t: no time embedding is built or added anywhere.
    - `num_classes > 0`: a class-conditional U-Net. A learned vector per class joins the time embedding (they
      are added), so every ResBlock sees both. One more vector, index `num_classes` (`null_label`), stands for
      "no label": classifier-free guidance trains with it in place of some labels and compares the two.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 64,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        dropout: float = 0.0,
        disable_residual: bool = False,
        disable_time_emb: bool = False,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        _check_unet(in_channels, base_channels, channel_mults, dropout, num_classes)
        emb_dim = 4 * base_channels
        self.time_mlp = None if disable_time_emb else nn.Sequential(
            SinusoidalTimeEmbedding(base_channels),
            nn.Linear(base_channels, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )
        self.null_label = num_classes
        self.label_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        time_dim = emb_dim if self.time_mlp is not None or self.label_emb is not None else None
        chs = [base_channels * m for m in channel_mults]
        self.in_conv = nn.Conv2d(in_channels, base_channels, kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList()
        in_ch = base_channels
        for i, ch in enumerate(chs):
            self.down_blocks.append(
                DownBlock(in_ch, ch, time_dim, dropout, disable_residual, downsample=i < len(chs) - 1)
            )
            in_ch = ch
        self.mid_block = MidBlock(chs[-1], time_dim, dropout, disable_residual)
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(chs))):
            next_ch = chs[i - 1] if i > 0 else chs[0]  # the width of the level above, which the Upsample hands on
            self.up_blocks.append(UpBlock(chs[i], next_ch, time_dim, dropout, disable_residual, upsample=i > 0))
        self.out_norm = group_norm(chs[0])
        self.out_conv = nn.Conv2d(chs[0], in_channels, kernel_size=3, padding=1)

    def halvings(self) -> int:
        """How many times the way down halves the resolution: image sides must divide by 2 that many times."""
        return len(self.down_blocks) - 1

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, C, H, W), integer timesteps t (B,) and, for a class-conditional U-Net, class labels (B,)
        (`null_label` or None: no label) -> predicted noise (B, C, H, W)."""
        t_emb = self.time_mlp(t) if self.time_mlp is not None else None
        if self.label_emb is not None:
            if labels is None:
                labels = torch.full_like(t, self.null_label)
            y_emb = self.label_emb(labels)
            t_emb = y_emb if t_emb is None else t_emb + y_emb
        h = self.in_conv(x)
        skips = []
        for block in self.down_blocks:
            h, skip = block(h, t_emb)
            skips.append(skip)
        h = self.mid_block(h, t_emb)
        for block in self.up_blocks:
            h = block(h, skips.pop(), t_emb)
        return self.out_conv(F.silu(self.out_norm(h)))


def _check_unet(
    in_channels: int, base_channels: int, channel_mults: tuple[int, ...], dropout: float, num_classes: int
) -> None:
    for name, value in {"in_channels": in_channels, "base_channels": base_channels}.items():
        if value <= 0:
            raise UserInputError(f"{name} must be a positive integer, got {value}.")
    if not channel_mults or any(m <= 0 for m in channel_mults):
        raise UserInputError(f"channel_mults must be a non-empty list of positive integers, got {channel_mults}.")
    if not 0.0 <= dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1), got {dropout}.")
    if num_classes < 0:
        raise UserInputError(f"num_classes must be 0 (unconditional) or more, got {num_classes}.")


def switchable_parts(unet: UNet) -> list[str]:
    """The parts `switch_off` can knock out of this U-Net: its time embedding (if it has one) and each level's skip."""
    time_emb = ["time_emb"] if unet.time_mlp is not None else []
    return time_emb + [f"skip_{level}" for level in range(len(unet.down_blocks))]


@contextlib.contextmanager
def switch_off(unet: UNet, part: str, band: tuple[int, int]) -> Iterator[None]:
    """Zero one part of a trained U-Net for the samples whose timestep t is in band = [t_lo, t_hi), while the
    context lasts: which part the network needs at which noise level, asked without retraining.

    - `part="time_emb"`: the time embedding (time_mlp's output) is zeros; a conditional U-Net keeps its label's.
    - `part=f"skip_{level}"`: the skip that level's up block concatenates is zeros (level 0: full resolution).
    Forward hooks do it, so the forward pass stays the one above; they act per sample (t is (B,)) and are
    removed on exit, error or not.
    """
    parts = switchable_parts(unet)
    if part not in parts:
        raise UserInputError(f"This U-Net has no part {part!r}: choose one of {', '.join(parts)}.")
    t_lo, t_hi = band
    if not 0 <= t_lo < t_hi:
        raise UserInputError(f"A band is (t_lo, t_hi) with 0 <= t_lo < t_hi (t_hi excluded), got {tuple(band)}.")
    in_band = torch.zeros(0, dtype=torch.bool)  # the current batch's samples with t in the band, set by read_t

    def read_t(module: nn.Module, args: tuple, kwargs: dict) -> None:
        nonlocal in_band
        t = args[1] if len(args) > 1 else kwargs["t"]
        in_band = (t >= t_lo) & (t < t_hi)

    def zeroed(x: torch.Tensor) -> torch.Tensor:
        return torch.where(in_band.view(-1, *[1] * (x.dim() - 1)), torch.zeros_like(x), x)

    def zero_skip(module: nn.Module, args: tuple) -> tuple:
        h, skip, t_emb = args
        return h, zeroed(skip), t_emb

    handles = [unet.register_forward_pre_hook(read_t, with_kwargs=True)]
    try:
        if part == "time_emb":
            handles.append(unet.time_mlp.register_forward_hook(lambda module, args, out: zeroed(out)))
        else:
            level = int(part.removeprefix("skip_"))
            up_block = unet.up_blocks[len(unet.up_blocks) - 1 - level]  # the way up runs the deepest level first
            handles.append(up_block.register_forward_pre_hook(zero_skip))
        yield
    finally:
        for handle in handles:
            handle.remove()
