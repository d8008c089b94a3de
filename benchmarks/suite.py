"""How big the test suite is and how long it takes here: the README's test figures, as JSON.

    python -m benchmarks.suite --output docs/results/test_suite.json

Runs the quick tier (`pytest -m "not slow"`) and the whole suite (`pytest`) one after the other, each in a
fresh process, and records the tests that passed and the wall-clock seconds of each. Both must pass.
"""

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RUNS = {"pytest -m \"not slow\"": ["-m", "not slow"], "pytest": []}


def run(args: list[str]) -> tuple[int, float]:
    """The number of tests that passed, and the seconds the run took (it must pass)."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", *args]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    passed = re.search(r"(\d+) passed", summary)
    if result.returncode != 0 or passed is None:
        sys.exit(f"error: `pytest {' '.join(args)}` did not pass: {summary or result.stderr[-2000:]}")
    return int(passed.group(1)), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="benchmarks/suite.json")
    args = parser.parse_args(argv)
    runs = []
    for command, pytest_args in RUNS.items():
        passed, seconds = run(pytest_args)
        runs.append({"command": command, "passed": passed, "seconds": round(seconds, 1)})
        print(f"{command}: {passed} passed in {seconds:.0f} s", flush=True)
    machine = {"processor": platform.processor() or platform.machine(), "cpus": torch.get_num_threads(),
               "torch": torch.__version__}  # fmt: skip
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"runs": runs, "machine": machine}, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
