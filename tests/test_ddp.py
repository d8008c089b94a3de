"""Both models on Lightning's DDP with two CPU processes: same weights everywhere, every output written once."""


import pytest
import torch

from callbacks.tags import SAMPLES
from experiments.run_log import RunLog
from subprocess_runs import run_train
from tiny import ddpm_args, gpt_args

pytestmark = pytest.mark.slow  # two train.py processes each

TWO_PROCESSES = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


# Llama's parts, where DDP could trip: an untied head, no position embedding, grouped key/value heads.
LLAMA = ["--model.norm", "rmsnorm", "--model.pos_emb", "rope", "--model.mlp", "swiglu", "--model.n_kv_head", "1",
         "--model.tie_weights", "false"]  # fmt: skip


@pytest.mark.parametrize("model", ["gpt2_mini", "gpt2_mini_llama", "ddpm"])
def test_two_process_training_and_predict(tmp_path, tiny_mnist, short_text, model):
    make, data = (ddpm_args, tiny_mnist) if model == "ddpm" else (gpt_args, short_text)
    switches = LLAMA if model == "gpt2_mini_llama" else []
    dump = tmp_path / "ranks"
    fit = run_train(
        "fit", *make(tmp_path, data, "--trainer.max_steps", "4", "--trainer.val_check_interval", "2", *TWO_PROCESSES,
                     *switches),
        "--trainer.callbacks+=helper_callbacks.DumpRankState", "--trainer.callbacks.out_dir", str(dump),
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "Starting with 2 processes" in fit.stderr + fit.stdout

    ranks = [torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0]["state_dict"].items():
        assert torch.equal(ranks[1]["state_dict"][name], value), name  # DDP kept the replicas identical
    assert not torch.equal(ranks[0]["first_batch"], ranks[1]["first_batch"])  # each rank its own samples

    runs = sorted((tmp_path / "lightning_logs").iterdir())
    assert [r.name for r in runs] == ["version_0"]
    run = runs[0]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "last.ckpt"
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 4
    log = RunLog(run)
    if model == "ddpm":
        assert log.images(SAMPLES) == [2, 4]  # one grid per validation, not one per rank
        assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    else:
        assert log.texts(SAMPLES)[0] == [2, 4]
    if model == "gpt2_mini_llama":
        return  # predict splits prompts across processes the same way for every GPT: gpt2_mini's run shows it

    predict_args = ["--data.prompts", '["hello", "the lab", "world"]'] if model != "ddpm" else []
    predict = run_train(
        "predict", *make(tmp_path, data, *TWO_PROCESSES, *predict_args), "--ckpt_path", str(run / "checkpoints/last.ckpt")
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert predict.stdout.count("Wrote ") == 1
    out = sorted((tmp_path / "lightning_logs").iterdir())[-1]
    if model == "ddpm":
        assert torch.load(out / "samples.pt", weights_only=True).shape == (4, 1, 28, 28)
    else:
        texts = (out / "predictions.txt").read_text().split("\n" + "-" * 40 + "\n")
        prompts = ["hello", "the lab", "world"]
        assert len(texts) == 3 and all(t.startswith(p) for t, p in zip(texts, prompts))  # all three, in order
