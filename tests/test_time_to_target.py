"""benchmarks.time_to_target: how nanoGPT's output is read, and how the seeds of a recipe are summed up."""

from benchmarks.time_to_target import run_nanogpt, summarize

def test_nanogpt_is_timed_to_its_first_evaluation_at_the_target_with_its_checkpoint_written(tmp_path):
    nanogpt = tmp_path / "nanoGPT"
    nanogpt.mkdir()  # a stand-in that prints what nanoGPT's train.py prints (log_interval 1), cut short
    (nanogpt / "train.py").write_text(
        "import sys, torch\n"
        "exec(open(sys.argv[2]).read())  # the benchmark's seed config, after the recipe's own config file\n"
        "torch.manual_seed(1337)\n"
        "assert torch.initial_seed() == 1339, 'the benchmark seeds nanoGPT with its own seed'\n"
        "print('step 0: train loss 4.1676, val loss 4.1649')\n"
        "for i in range(3): print(f'iter {i}: loss 4.0, time {20 + i}.00ms, mfu -100.00%')\n"
        "print('step 250: train loss 1.8, val loss 1.8970')\n"
        "print('saving checkpoint to out')\n"
        "print('iter 250: loss 1.8, time 30.00ms, mfu 0.05%')\n"
        "print('step 500: train loss 1.7, val loss 1.7000')\n",
        encoding="utf-8",
    )
    run = run_nanogpt(nanogpt, seed=1339, target=1.898, folder=tmp_path)
    assert (run["reached"], run["step"]) == (True, 250)
    assert run["val_losses"] == {0: 4.1649, 250: 1.897}  # it stopped there: step 500 was never read
    assert run["step_ms"] == 22.0  # the median of the iterations after the first (21, 22, 30)


def test_a_recipe_is_summed_up_over_its_seeds_and_those_that_missed_the_target_are_counted():
    runs = [{"seconds": s, "reached": r, "step": st, "step_ms": ms}
            for s, r, st, ms in ((50.0, True, 1750, 24.0), (55.0, False, None, 25.0), (53.0, True, 2000, 23.0))]  # fmt: skip
    row = summarize(runs)
    assert row == {"median_s": 53.0, "min_s": 50.0, "max_s": 55.0, "median_step_ms": 24.0, "reached": 2, "seeds": 3,
                   "median_step": 1875.0}  # fmt: skip
