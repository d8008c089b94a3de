"""The U-Net's shapes, and that each switch changes exactly what it names."""

import pytest
import torch

from errors import UserInputError
from lightning_modules.unet import DownBlock, ResBlock, SinusoidalTimeEmbedding, UNet, UpBlock
from tiny import tiny_unet


def test_every_level_has_the_expected_shape() -> None:
    unet = tiny_unet()
    shapes: dict[str, list[tuple[int, ...]]] = {}

    def record(name: str):
        def hook(module, inputs, output):
            outputs = output if isinstance(output, tuple) else (output,)
            shapes[name] = [tuple(o.shape) for o in outputs]

        return hook

    for i, block in enumerate(unet.down_blocks):
        block.register_forward_hook(record(f"down{i}"))
    unet.mid_block.register_forward_hook(record("mid"))
    for i, block in enumerate(unet.up_blocks):
        block.register_forward_hook(record(f"up{i}"))

    out = unet(torch.randn(2, 1, 28, 28), torch.tensor([0, 5]))

    assert out.shape == (2, 1, 28, 28)
    # DownBlock returns (input to the next level, skip); channels 8, 16, 16 at 28, 14, 7 pixels.
    assert shapes["down0"] == [(2, 8, 14, 14), (2, 8, 28, 28)]
    assert shapes["down1"] == [(2, 16, 7, 7), (2, 16, 14, 14)]
    assert shapes["down2"] == [(2, 16, 7, 7), (2, 16, 7, 7)]
    assert shapes["mid"] == [(2, 16, 7, 7)]
    # UpBlocks run deepest first; each Upsample hands the next level its own channel count.
    assert shapes["up0"] == [(2, 16, 14, 14)]
    assert shapes["up1"] == [(2, 8, 28, 28)]
    assert shapes["up2"] == [(2, 8, 28, 28)]


def test_two_levels_also_fit_28_pixels() -> None:
    unet = UNet(base_channels=8, channel_mults=(1, 2))
    assert unet(torch.randn(1, 1, 28, 28), torch.tensor([3])).shape == (1, 1, 28, 28)


def test_up_blocks_take_twice_their_width_from_the_skip() -> None:
    unet = tiny_unet()
    for block in unet.up_blocks:
        assert isinstance(block, UpBlock)
        assert block.res1.conv1.in_channels == 2 * block.res1.conv1.out_channels


def test_sinusoidal_embedding_separates_timesteps() -> None:
    emb = SinusoidalTimeEmbedding(16)(torch.arange(50))
    assert emb.shape == (50, 16)
    assert emb.abs().max() <= 1.0
    assert torch.cdist(emb, emb).add(torch.eye(50)).min() > 0  # no two timesteps share an embedding


def test_output_depends_on_t_by_default() -> None:
    unet, x = tiny_unet(), torch.randn(2, 1, 28, 28)
    assert not torch.allclose(unet(x, torch.tensor([0, 0])), unet(x, torch.tensor([19, 19])))


def test_disable_time_emb_makes_output_independent_of_t() -> None:
    unet, x = tiny_unet(disable_time_emb=True), torch.randn(2, 1, 28, 28)
    assert unet.time_mlp is None
    assert all(m.time_proj is None for m in unet.modules() if isinstance(m, ResBlock))
    torch.testing.assert_close(unet(x, torch.tensor([0, 0])), unet(x, torch.tensor([19, 7])), rtol=0, atol=0)


def _with_conv_path_zeroed(block: ResBlock) -> ResBlock:
    torch.nn.init.zeros_(block.conv2.weight)
    torch.nn.init.zeros_(block.conv2.bias)
    return block


@pytest.mark.parametrize("in_ch, out_ch", [(8, 8), (8, 16)])
def test_resblock_adds_its_input_back_by_default(in_ch: int, out_ch: int) -> None:
    torch.manual_seed(0)
    block = _with_conv_path_zeroed(ResBlock(in_ch, out_ch, time_dim=32))
    x, t_emb = torch.randn(2, in_ch, 7, 7), torch.randn(2, 32)
    with torch.no_grad():
        expected = x if in_ch == out_ch else block.skip(x)  # a 1x1 conv projects when the width changes
        torch.testing.assert_close(block(x, t_emb), expected)


@pytest.mark.parametrize("in_ch, out_ch", [(8, 8), (8, 16)])
def test_disable_residual_drops_the_skip_add(in_ch: int, out_ch: int) -> None:
    torch.manual_seed(0)
    block = _with_conv_path_zeroed(ResBlock(in_ch, out_ch, time_dim=32, disable_residual=True))
    out = block(torch.randn(2, in_ch, 7, 7), torch.randn(2, 32))
    assert out.shape == (2, out_ch, 7, 7)
    assert torch.count_nonzero(out) == 0  # only the (zeroed) conv path is left


def test_disable_residual_reaches_every_resblock_but_not_the_unet_skips() -> None:
    unet = tiny_unet(disable_residual=True)
    blocks = [m for m in unet.modules() if isinstance(m, ResBlock)]
    assert len(blocks) == 2 * (3 + 1 + 3) and all(b.disable_residual for b in blocks)
    assert all(isinstance(b, DownBlock) for b in unet.down_blocks)
    assert unet(torch.randn(1, 1, 28, 28), torch.tensor([1])).shape == (1, 1, 28, 28)


def test_switches_leave_the_rest_of_the_network_alone() -> None:
    base, no_res = tiny_unet(), tiny_unet(disable_residual=True)
    assert base.state_dict().keys() == no_res.state_dict().keys()
    no_time = tiny_unet(disable_time_emb=True)
    removed = set(base.state_dict()) - set(no_time.state_dict())
    assert removed and all(k.startswith("time_mlp.") or ".time_proj." in k for k in removed)
    assert set(no_time.state_dict()) <= set(base.state_dict())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"in_channels": 0}, "in_channels must be a positive integer, got 0"),
        ({"base_channels": 9}, r"its size \(the U-Net's base_channels\) must be even, got 9"),
        ({"channel_mults": ()}, "channel_mults must be a non-empty list of positive integers"),
        ({"channel_mults": (1, 0)}, "channel_mults must be a non-empty list of positive integers"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"num_classes": -1}, r"num_classes must be 0 \(unconditional\) or more"),
    ],
)
def test_the_unet_checks_its_own_settings(settings, message):
    with pytest.raises(UserInputError, match=message):
        UNet(**settings)


def test_an_odd_width_is_fine_without_a_time_embedding():
    unet = UNet(base_channels=9, channel_mults=(1,), disable_time_emb=True)
    assert unet(torch.randn(1, 1, 8, 8), torch.tensor([0])).shape == (1, 1, 8, 8)
