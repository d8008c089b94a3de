"""The class-conditional DDPM: labels change what it makes, labels are dropped at the configured rate,
classifier-free guidance is the formula it names, and bad labels get clear errors."""

import pytest
import torch

from errors import UserInputError
from lightning_modules import DDPM
from tiny import tiny_ddpm


def tiny(**kwargs) -> DDPM:
    model = tiny_ddpm(**{"num_classes": 10, **kwargs}).eval()
    with torch.no_grad():  # a label embedding far from its zero-mean start, so labels visibly matter
        model.unet.label_emb.weight.normal_(0, 1)
    return model


def x_t(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_the_label_changes_the_prediction_and_no_label_is_a_label_of_its_own():
    model = tiny()
    t = torch.full((4,), 10)
    threes, sevens = model(x_t(), t, torch.full((4,), 3)), model(x_t(), t, torch.full((4,), 7))
    assert not torch.allclose(threes, sevens)
    torch.testing.assert_close(model(x_t(), t), model(x_t(), t, torch.full((4,), model.unet.null_label)))
    assert not torch.allclose(model(x_t(), t), threes)


def test_different_labels_draw_different_images_from_the_same_noise():
    model = tiny()
    fours = model.sample(3, steps=5, seed=0, labels=[4, 4, 4])
    nines = model.sample(3, steps=5, seed=0, labels=[9, 9, 9])
    assert not torch.allclose(fours, nines)
    torch.testing.assert_close(model.sample(3, steps=5, seed=0, labels=[4, 4, 4]), fours)


def test_an_unconditional_model_is_unchanged():
    plain = tiny_ddpm()
    assert plain.unet.label_emb is None and not plain.conditional
    assert plain.drop_labels([torch.zeros(2, 1, 28, 28), torch.tensor([1, 2])]) is None
    with pytest.raises(UserInputError, match="unconditional"):
        plain.sample(2, steps=2, labels=[1, 2])


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
def test_labels_are_replaced_by_no_label_at_the_configured_rate(rate):
    model = tiny(cond_drop_prob=rate)
    labels = torch.arange(20_000) % 10
    torch.manual_seed(0)
    dropped = model.drop_labels([torch.zeros(1), labels])
    null = dropped == model.unet.null_label
    assert null.float().mean().item() == pytest.approx(rate, abs=0.01)
    assert torch.equal(dropped[~null], labels[~null])  # the others keep their own label


def test_guidance_is_the_classifier_free_formula_and_scale_zero_is_the_conditional_prediction():
    model = tiny()
    t, labels = torch.full((4,), 10), torch.tensor([0, 3, 5, 9])
    conditional, unconditional = model(x_t(), t, labels), model(x_t(), t)
    torch.testing.assert_close(model.guided_eps(x_t(), t, labels, 0.0), conditional)
    expected = 4 * conditional - 3 * unconditional  # (1 + w) eps(x, y) - w eps(x), w = 3
    torch.testing.assert_close(model.guided_eps(x_t(), t, labels, 3.0), expected, atol=1e-5, rtol=1e-5)


def test_guidance_scale_zero_samples_equal_the_conditional_sampler():
    model = tiny()
    guided = model.sample(4, steps=4, seed=0, labels=[1, 2, 3, 4], guidance_scale=0.0)
    model.guided_eps = lambda x, t, labels, w: model(x, t, labels)  # the plain conditional prediction
    torch.testing.assert_close(model.sample(4, steps=4, seed=0, labels=[1, 2, 3, 4], guidance_scale=5.0), guided)


def test_by_default_the_samples_cycle_through_the_digits():
    assert tiny().sampling_labels(None, 12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    model = tiny(num_samples=3, labels=[7, 2])
    assert model.predict_labels.tolist() == [7, 7, 7, 2, 2, 2]  # one row of num_samples per asked digit


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 10], r"Labels must be whole numbers from 0 to 9 .*got \[0, 10\]"),
        ([-1, 2], r"Labels must be whole numbers from 0 to 9"),
        ([1, 2, 3], r"Give one label per image: 2 image\(s\), got labels of shape \(3,\)"),
        ([1.5, 2.0], r"Labels must be whole numbers"),
    ],
)
def test_bad_labels_get_a_clear_error(labels, message):
    with pytest.raises(UserInputError, match=message):
        tiny().sample(2, steps=2, labels=labels)


def test_bad_conditioning_settings_get_a_clear_error():
    with pytest.raises(UserInputError, match="cond_drop_prob must be in \\[0, 1\\)"):
        tiny_ddpm(num_classes=10, cond_drop_prob=1.0)
    with pytest.raises(UserInputError, match="num_classes must be 0 \\(unconditional\\) or more, got -1"):
        tiny_ddpm(num_classes=-1)
    with pytest.raises(UserInputError, match=r"from 0 to 9 .*got \[12\]"):
        tiny_ddpm(num_classes=10, labels=[12])
    with pytest.raises(UserInputError, match="unconditional"):
        tiny_ddpm(labels=[1])


def test_the_validation_loss_gives_every_label():
    model = tiny(cond_drop_prob=0.5)
    batch = [torch.rand(6, 1, 28, 28) * 2 - 1, torch.arange(6)]
    first = model._fixed_noise_losses(batch, 0)["losses"]
    torch.testing.assert_close(model._fixed_noise_losses(batch, 0)["losses"], first)  # no label dropped at random
