"""Checkpoint files on disk: written so a crash never leaves half a file, read with a clear word when they are wrong."""

import copy
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_warn

from checkpoints.format import READABLE_FORMATS, upgrade, written_by, written_format
from errors import UserInputError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside its target, fsyncs it, then renames it over the target.

    A rename within one folder is atomic, so a process killed at any moment leaves the old complete file or
    the new complete file, never a truncated one. (Lightning's own writer stages the file in the system's
    temporary folder, which may be another disk, where the final move is a copy.)

    With `background=True` (train.py's choice) training goes on while the file is written: `save_checkpoint`
    only takes a deep copy of the checkpoint (a snapshot of this step; tied weights stay one tensor) and a
    worker thread writes it. At most one write is in flight: the next save, a removal, a load and the end of
    the run wait for it first (`wait`), so memory stays bounded, an old file is never deleted before its
    replacement is on disk, and a failed write raises in the training process. Lightning's
    `AsyncCheckpointIO` does neither of the first two: it queues snapshots without bound and deletes old
    files at once. Once the run has ended (`teardown`), saves are written before they return, so a
    `trainer.save_checkpoint` after `fit` is on disk when the call returns.
    """

    def __init__(self, background: bool = False) -> None:
        super().__init__()
        self.background = background
        self._executor: ThreadPoolExecutor | None = None  # made at the first save: plugins must stay picklable
        self._pending: Future | None = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        self.wait()
        if not self.background:
            _write_atomically(checkpoint, Path(path))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending = self._executor.submit(_write_atomically, copy.deepcopy(checkpoint), Path(path))

    def wait(self) -> None:
        """Return once the write in flight, if any, is on disk; raise its error if it failed."""
        if self._pending is None:
            return
        try:
            self._pending.result()
        finally:
            if self._pending.done():  # not when the wait itself was interrupted (Ctrl-C): teardown waits again
                self._pending = None

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.wait()
        return super().load_checkpoint(*args, **kwargs)

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        self.wait()
        super().remove_checkpoint(path)

    def teardown(self) -> None:
        """Lightning's end of a run (also after an error): the last write lands, later saves are synchronous."""
        failing = sys.exc_info()[1] is not None  # the run's own error is being handled: keep it the one raised
        try:
            self.wait()
        except Exception as err:
            if not failing:
                raise
            rank_zero_warn(f"The last checkpoint write failed as well: {err}")
        finally:
            self.background = False
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None


def _write_atomically(checkpoint: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(path: str | os.PathLike, model: str | None = None) -> dict[str, Any]:
    """The checkpoint at `path` as plain data in the current format, or a `UserInputError` naming the file and
    what is wrong with it.

    `model` is the class name the caller needs (e.g. "GPT2Mini"): a checkpoint written by another model is
    refused before anything tries to load its weights. The file is only read, never changed.
    """
    path = Path(path)
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "does not exist"
        raise UserInputError(
            f"Checkpoint {path} {where}. Runs keep theirs under "
            "<default_root_dir>/lightning_logs/version_N/checkpoints/ (last.ckpt is the newest)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        truncated = "central directory" in reason  # what torch says of a zip file cut short
        what = "is truncated (an interrupted copy or save?)" if truncated else "is not a checkpoint file"
        raise UserInputError(
            f"Checkpoint {path} cannot be read: it {what} ({reason}). "
            "Use another one, e.g. last.ckpt or a best-*.ckpt from the same checkpoints folder."
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserInputError(
            f"{path} is a PyTorch file but not a Lightning checkpoint (it has no state_dict). "
            "Give a .ckpt written by train.py."
        )
    version = written_format(checkpoint)
    if version is not None and version not in READABLE_FORMATS:
        raise UserInputError(
            f"{path} was written by an incompatible version of the lab (checkpoint format {version}; "
            f"this version reads formats {', '.join(map(str, READABLE_FORMATS))}). "
            "Use the version that wrote it, or train again."
        )
    writer = written_by(checkpoint)
    if model is not None and writer and writer != model:
        raise UserInputError(
            f"{path} is a {writer} checkpoint, but this run's model is {model}. "
            f"Use the config the checkpoint was trained with, or a {model} checkpoint."
        )
    return upgrade(checkpoint, writer or model or "")
