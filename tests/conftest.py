"""Shared fixtures: tiny synthetic data written into temporary folders (tests never need real data).

And the session's end on a signal: SIGTERM (`timeout 300 pytest`, a CI runner), SIGINT (Ctrl-C) or SIGHUP
stops the whole suite at once and kills every process the tests started. Without this, a signal that
arrives during one of the many in-process `Trainer.fit` calls only ends that fit: Lightning turns SIGTERM
into a `SIGTERMException` and Ctrl-C into `sys.exit(1)`, both `SystemExit`s that pytest records as that
test's failure (or error, in a fixture) before it goes on with the next test; `experiments.ablation`
even records them as a failed variant and trains the next one. And a `train.py` run in a subprocess
(with its DDP workers) is not stopped by a signal sent to pytest alone.
"""

import os
import signal
import struct
from pathlib import Path

import pytest
import torch

import subprocess_runs
from tiny import digit_squares, write_corpus

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_previous_handlers: dict[int, object] = {}
_progress = {"current": None, "passed": 0, "failed": [], "errors": []}
_stderr_fd: int | None = None  # the terminal's, kept before pytest's output capturing redirects fd 2
_session_pid = os.getpid()


def _stop_session(signum: int, frame: object) -> None:
    """Kill every child process, say where the suite stopped, and exit with 128 + the signal's number.

    Exits with `os._exit`, not an exception: the code the signal interrupts (Lightning's loops, the
    ablation's per-variant `except`) would catch an exception and carry on.
    Lightning's own SIGTERM handler, installed during a fit, calls this one after its own (it keeps the
    handler it finds); nothing of Lightning's is left to run.
    """
    if os.getpid() != _session_pid:  # a process forked from this one (a DataLoader worker) inherits the handler
        os._exit(128 + signum)
    try:
        for sig in (*_STOP_SIGNALS, signal.SIGCHLD):  # no second Ctrl-C, nor a DataLoader's handler, mid-cleanup
            signal.signal(sig, signal.SIG_IGN if sig != signal.SIGCHLD else signal.SIG_DFL)
        runs, others = subprocess_runs.kill_children()
        failed = [*_progress["failed"], *_progress["errors"]]
        lines = [
            f"\n!!! {signal.Signals(signum).name}: test session stopped during {_progress['current'] or 'no test'}; "
            f"{_progress['passed']} passed, {len(_progress['failed'])} failed, {len(_progress['errors'])} errors "
            f"before it. Killed {runs} train.py run(s) with their workers and {others} other child process(es).",
            *(f"!!! failed before the signal: {nodeid}" for nodeid in failed),
        ]
        os.write(_stderr_fd if _stderr_fd is not None else 2, ("\n".join(lines) + "\n").encode())
    finally:
        os._exit(128 + signum)


def _install_handlers() -> None:
    for sig in _previous_handlers:
        if signal.getsignal(sig) is not _stop_session:
            signal.signal(sig, _stop_session)


def pytest_configure(config: pytest.Config) -> None:
    global _stderr_fd
    _stderr_fd = os.dup(2)  # output capturing is suspended here: this is the terminal (or CI log)
    for sig in _STOP_SIGNALS:
        handler = signal.getsignal(sig)
        if handler != signal.SIG_IGN:  # one ignored on purpose stays ignored (`nohup pytest`, `pytest &` in a script)
            _previous_handlers[sig] = handler
    _install_handlers()


def pytest_runtest_logstart(nodeid: str) -> None:
    _progress["current"] = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _progress["failed" if report.when == "call" else "errors"].append(report.nodeid)
    elif report.passed and report.when == "call":
        _progress["passed"] += 1


def pytest_runtest_logfinish(nodeid: str) -> None:
    _progress["current"] = None
    if _previous_handlers:
        _install_handlers()  # should a test have replaced one (and not put it back)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _stderr_fd
    for sig, handler in _previous_handlers.items():
        signal.signal(sig, handler)
    _previous_handlers.clear()
    if _stderr_fd is not None:
        os.close(_stderr_fd)
        _stderr_fd = None


@pytest.fixture
def repetitive_text(tmp_path: Path) -> Path:
    """A short, highly repetitive text (3,600 characters): a small model can learn it in a few dozen steps."""
    return write_corpus(tmp_path / "tiny.txt", 120)


@pytest.fixture
def short_text(tmp_path: Path) -> Path:
    """The same text, 300 characters: a few batches an epoch, so that short runs cross epoch boundaries."""
    return write_corpus(tmp_path / "short.txt", 10)


def _write_idx(path: Path, data: torch.Tensor) -> None:
    """An IDX file as MNIST ships it: magic (2051 images, 2049 labels), big-endian int32 sizes, uint8 data."""
    magic = 2051 if data.dim() == 3 else 2049
    header = struct.pack(f">{1 + data.dim()}i", magic, *data.shape)
    path.write_bytes(header + data.to(torch.uint8).numpy().tobytes())


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir holding a tiny MNIST in torchvision's layout: 48 train and 16 test 28x28 "digits" (read only).

    Image i is `digit_squares`'s: black with a white 8x8 square whose corner depends on its label (i % 10), so
    there is a pattern to learn; image 0's first pixel is 0 and its square's first pixel 255, for checking scaling.
    """
    data_dir = tmp_path_factory.mktemp("mnist_data")
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 48), ("t10k", 16)):
        images, labels = digit_squares(n)
        _write_idx(raw / f"{split}-images-idx3-ubyte", (images[:, 0] * 255).round())
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return data_dir
