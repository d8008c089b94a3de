"""Sample quality: the judge (MNIST classifier), the metric on sets of known quality, and the callback's tags."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import train
from callbacks.tags import QUALITY
from experiments import quality
from experiments.run_log import RunLog
from lightning_modules import MNISTClassifier
from datamodules.non_digits import KINDS, non_digits
from lightning_modules.mnist_classifier import WEIGHTS
from metrics import SampleQuality, draw_samples
from tiny import REPO, ddpm_args, digit_squares, quiet_trainer, tiny_ddpm

SHARED_DATA = REPO.parent / "shared" / "data"


def squares(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit-like images in [0, 1] with a little noise, and their labels."""
    return digit_squares(n, noise=0.1, seed=seed)


@pytest.fixture(scope="module")
def judge() -> MNISTClassifier:
    """A classifier trained for a few steps on the squares: enough to tell them apart."""
    torch.manual_seed(0)
    images, labels = squares(200)
    model = MNISTClassifier(width=8, learning_rate=1e-2, warmup_steps=5, min_lr=1e-2)
    trainer = quiet_trainer(max_steps=40)
    trainer.fit(model, DataLoader(TensorDataset(images * 2 - 1, labels), batch_size=20, shuffle=True))
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def judge_file(judge, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("judge") / "judge.ckpt"
    trainer = quiet_trainer()
    trainer.strategy.connect(judge)
    trainer.save_checkpoint(path, weights_only=True)
    return path


def test_the_shipped_classifier_loads_offline_and_is_small():
    model = MNISTClassifier.pretrained()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert WEIGHTS.stat().st_size < 2_000_000
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 11)  # ten digits and "not a digit"
    assert model.features(torch.zeros(2, 1, 28, 28)).shape == (2, model.num_features)


def test_the_shipped_judge_is_unsure_of_images_that_are_not_digits():
    judge = MNISTClassifier.pretrained()
    for kind in KINDS:
        images = non_digits(200, kind, torch.Generator().manual_seed(1))
        confidence = judge.digit_probabilities(images * 2 - 1).max(dim=-1).values
        assert confidence.mean() <= 0.5, kind  # the ten-class judge said 0.99999 for uniform noise


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="needs the real MNIST in ../shared/data")
def test_the_quality_command_reports_low_confidence_for_noise_and_high_for_real_digits(tmp_path, capsys):
    noise = tmp_path / "samples.pt"
    torch.save(torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)), noise)
    quality.main([str(noise), "--data", str(SHARED_DATA)])
    assert json.loads(capsys.readouterr().out)["confidence"] <= 0.5
    digits = quality.mnist(str(SHARED_DATA), train=False)[0][:500]  # real digits, read by the same judge
    confidence = MNISTClassifier.pretrained().digit_probabilities(digits * 2 - 1).max(dim=-1).values
    assert confidence.mean() >= 0.95


def test_teaching_not_a_digit_keeps_every_weight_it_starts_from(judge, judge_file):
    torch.manual_seed(0)
    taught = MNISTClassifier(width=8, not_a_digit=True, start_from=str(judge_file), learning_rate=1e-2, warmup_steps=5)
    images, labels = squares(200)
    quiet_trainer(max_steps=60).fit(taught, DataLoader(TensorDataset(images * 2 - 1, labels), batch_size=20))
    start = judge.state_dict()
    for name, value in taught.state_dict().items():
        if not name.startswith("not_a_digit_head."):
            assert torch.equal(value, start[name]), name  # BatchNorm's running statistics included
    taught.eval()
    others = taught.digit_probabilities(non_digits(100, generator=torch.Generator().manual_seed(2)) * 2 - 1)
    digits = taught.digit_probabilities(squares(100, seed=3)[0] * 2 - 1)
    assert others.max(dim=-1).values.mean() < 0.5 < digits.max(dim=-1).values.mean()
    assert torch.equal(digits.argmax(dim=-1), judge.digit_probabilities(squares(100, seed=3)[0] * 2 - 1).argmax(dim=-1))


def test_the_judge_reads_the_squares(judge):
    images, labels = squares(50, seed=1)
    assert (judge(images * 2 - 1).argmax(-1) == labels).float().mean() > 0.9


def test_identical_sets_score_near_zero_and_worse_sets_score_higher(judge):
    real, labels = squares(300, seed=1)
    metric = SampleQuality(judge)
    metric.update(real, real=True)
    metric.update(real, labels=labels)
    same = metric.compute()
    assert abs(same["fid"]) < 1e-3 and same["num_samples"] == 300
    assert same["accuracy"] > 0.9 and same["class_balance"] > 0.99 and same["confidence"] > 0.5

    scores = []
    for std in (0.1, 0.3, 0.6):  # the reference stays; the samples get noisier
        metric.reset()
        metric.update((real + std * torch.randn(real.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1))
        scores.append(metric.compute()["fid"])
    assert same["fid"] < scores[0] < scores[1] < scores[2]


def test_class_balance_is_zero_for_one_digit_and_one_for_all_ten(judge):
    images, labels = squares(100)
    metric = SampleQuality(judge)
    metric.update(images, real=True)
    metric.update(images[labels == 3])
    assert metric.compute()["class_balance"] == pytest.approx(0.0, abs=1e-6)
    assert "accuracy" not in metric.compute()  # no labels given
    metric.reset()
    metric.update(images)
    assert metric.compute()["class_balance"] == pytest.approx(1.0, abs=1e-6)


def test_the_metric_refuses_images_that_are_not_digits(judge):
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\) digits, got a tensor of shape \(2, 3, 32, 32\)"):
        SampleQuality(judge).update(torch.zeros(2, 3, 32, 32))


@pytest.mark.slow
def test_the_callback_logs_the_quality_tags_at_each_validation(tmp_path, tiny_mnist, judge_file):
    args = ddpm_args(tmp_path, tiny_mnist, "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
                     "--trainer.callbacks+=callbacks.SampleQualityCallback", "--trainer.callbacks.num_samples", "10",
                     "--trainer.callbacks.sample_steps", "2", "--trainer.callbacks.classifier", str(judge_file),
                     "--model.num_classes", "10")  # fmt: skip
    cli = train.LabCLI(args=["fit", *args])
    log = RunLog(cli.trainer.log_dir)
    for name in ("fid", "confidence", "class_balance", "accuracy"):
        assert log.scalars(QUALITY + name)[0] == [2, 4], name
    assert 0.0 <= log.last(QUALITY + "class_balance") <= 1.0


@pytest.mark.slow
def test_the_quality_command_scores_a_checkpoint_samples_and_the_calibration_sets(tmp_path, tiny_mnist, judge_file, capsys):
    cli = train.LabCLI(args=["fit", *ddpm_args(tmp_path, tiny_mnist, "--trainer.max_steps", "2")])
    ckpt = cli.trainer.checkpoint_callbacks[-1].last_model_path
    common = ["--data", str(tiny_mnist), "--classifier", str(judge_file), "--num_samples", "12"]
    capsys.readouterr()
    quality.main([ckpt, *common, "--steps", "3", "ancestral"])
    ddim, ancestral = json.loads(capsys.readouterr().out)
    assert ddim["sampler"] == "DDIM, 3 steps, eta 0.0" and ancestral["sampler"].startswith("DDPM ancestral")
    assert ddim["precision"] == "32"
    quality.main([ckpt, *common, "--steps", "3", "--precision", "bf16-mixed"])
    assert json.loads(capsys.readouterr().out)["precision"] == "bf16-mixed"
    assert ddim["num_samples"] == 12 and ddim["fid"] > 0 and 0 < ddim["confidence"] <= 1 and ddim["seconds"] >= 0

    samples = tmp_path / "samples.pt"
    torch.save(squares(12)[0], samples)
    quality.main([str(samples), *common])
    assert json.loads(capsys.readouterr().out)["num_samples"] == 12

    quality.main(["--calibrate", *common])
    table = json.loads(capsys.readouterr().out)
    assert table[0]["source"] == "real training digits"
    noisy = [row["fid"] for row in table if row["source"].startswith("+ Gaussian noise")]
    assert len(noisy) == len(quality.NOISE_LEVELS)


@pytest.mark.slow
def test_the_quality_command_sweeps_guidance_and_plots_accuracy_against_distance(tmp_path, tiny_mnist, judge_file, capsys):
    args = ddpm_args(tmp_path, tiny_mnist, "--trainer.max_steps", "2", "--model.num_classes", "10")
    ckpt = train.LabCLI(args=["fit", *args]).trainer.checkpoint_callbacks[-1].last_model_path
    capsys.readouterr()
    plot = tmp_path / "guidance.png"
    quality.main([ckpt, "--data", str(tiny_mnist), "--classifier", str(judge_file), "--num_samples", "20",
                  "--steps", "2", "--guidance_scale", "0", "2", "--plot", str(plot)])  # fmt: skip
    unguided, guided = json.loads(capsys.readouterr().out)
    assert (unguided["guidance_scale"], guided["guidance_scale"]) == (0.0, 2.0)
    assert 0 <= unguided["accuracy"] <= 1 and unguided["fid"] != guided["fid"]  # the guidance changed the samples
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize("num_classes", [0, 10])
def test_bf16_sampling_draws_nearly_the_same_images_as_fp32(num_classes):
    model = tiny_ddpm(num_classes=num_classes, guidance_scale=3.0)
    draw = {p: draw_samples(model, 4, steps=5, precision=p)[0] for p in ("32", "bf16-mixed")}
    difference = (draw["32"] - draw["bf16-mixed"]).abs()
    assert 0 < difference.max() < 0.1  # autocast was on, and the same noise led to the same images


def test_a_drawn_set_is_the_same_in_any_batch_and_asks_a_conditional_model_for_the_digits_in_turn():
    model = tiny_ddpm(num_classes=10)
    images, labels = draw_samples(model, 6, steps=3, seed=5, batch_size=4)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5] and images.shape == (6, 1, 28, 28)
    first_batch = model.sample(4, 3, seed=5, labels=[0, 1, 2, 3])
    second_batch = model.sample(2, 3, seed=5 + 4, labels=[4, 5])
    torch.testing.assert_close(images, torch.cat([first_batch, second_batch]))


def test_score_forgets_the_last_samples_but_keeps_the_reference(judge):
    real, labels = squares(100, seed=1)
    metric = SampleQuality(judge)
    metric.add_reference(real, batch_size=30)
    first = metric.score(real, labels, batch_size=40)
    assert metric.score(real, labels) == pytest.approx(first, abs=1e-6)  # batches do not change the score
    assert first["num_samples"] == 100 and abs(first["fid"]) < 1e-3
    assert metric.score(real[:50], labels[:50])["num_samples"] == 50


def test_the_quality_command_says_what_is_missing(tmp_path, capsys):
    with pytest.raises(SystemExit, match="MNIST not found in data_dir"):
        quality.main([str(tmp_path / "samples.pt"), "--data", str(tmp_path)])
    with pytest.raises(SystemExit):
        quality.main([])
    assert "give a checkpoint or samples file to score, or --calibrate" in capsys.readouterr().err
