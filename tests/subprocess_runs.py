"""Running train.py in a fresh process, as a user would: what the kill, resume and DDP tests need.

Each run is a process group of its own (`start_new_session`), so that the run and every process it starts
(the DDP workers) can be killed together and none outlives the test: when the run ends, whatever it left
behind is killed (a DDP worker whose rank 0 died would otherwise wait for it), and when the test session
is stopped by a signal, `kill_children` (called by conftest.py's handler) kills every run in progress.
"""

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tiny import REPO

TESTS = Path(__file__).resolve().parent

# Only for a run that hangs: a tiny run takes seconds to a minute, several minutes on a machine that other
# jobs keep busy. No test depends on a run finishing within some time; the runs stop by step count.
HANG_TIMEOUT_S = 1200

_running: set[int] = set()  # process groups (= the pid of the run's first process) of runs in progress


def run_train(
    *args: str, timeout: float | None = HANG_TIMEOUT_S, interrupt: tuple[int, Path] | None = None, killed: bool = False
) -> subprocess.CompletedProcess:
    """`python train.py ARGS` from the repository root, with tests/ importable for the helper callbacks.

    `interrupt=(signal, path)` sends the run `signal` (as Ctrl-C or a scheduler would) once `path` exists; a
    run handles those and exits with a status. A run that a signal ends (a negative return code, such as -6
    for an abort at exit) fails the test, unless the test kills it on purpose (`killed=True`).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "train.py", *args]
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_as_from_a_terminal,
    )
    _running.add(proc.pid)
    try:
        if interrupt is not None:
            signum, when = interrupt
            deadline = time.monotonic() + (timeout or float("inf"))
            while not when.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"train.py ran for more than {timeout} s, the limit for a hung run; it was killed. "
            f"Its arguments: {args}\nIts stderr ends:\n{stderr[-3000:]}"
        )
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        _kill_group(proc.pid)  # whatever the run left behind
        _running.discard(proc.pid)
    if proc.returncode < 0 and not killed:
        name = signal.Signals(-proc.returncode).name
        pytest.fail(f"train.py was ended by {name}. Its arguments: {args}\nIts stderr ends:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _as_from_a_terminal() -> None:
    """Ctrl-C reaches a run started from a terminal. A suite started in the background by a script (`cmd &`)
    has SIGINT ignored, which its children would inherit: Python would then never raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_children() -> tuple[int, int]:
    """SIGKILL every run in progress (whole process groups) and every other process this one started, and theirs.

    For the end of the test session (conftest.py's signal handler): the tests' own subprocesses that are not
    `run_train` runs are found through /proc (Linux). They are stopped (SIGSTOP) before they are killed, so
    that none can start a process that escapes. Returns (runs killed, other processes killed).
    """
    groups = list(_running)
    runs = sum(_kill_group(group) for group in groups)
    stopped: set[int] = set()
    for _ in range(10):
        new = {pid for pid in _descendants(os.getpid()) if _group_of(pid) not in groups} - stopped
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
        stopped |= new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return runs, len(stopped)


def _kill_group(group: int) -> int:
    try:
        os.killpg(group, signal.SIGKILL)
        return 1
    except OSError:  # no process left in it
        return 0


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _descendants(root: int) -> list[int]:
    """Live (not zombie) processes below `root`, read from /proc; none where there is no /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []
    for name in entries:
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state, ppid = f.read().rpartition(b")")[2].split()[:2]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if state != b"Z":
            children[int(ppid)].append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
