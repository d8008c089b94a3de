"""One command line for every model in the lab.

    python train.py fit --config configs/gpt2_mini.yaml
    python train.py fit --config configs/gpt2_mini.yaml --model.ln_style post --trainer.max_steps 100
    python train.py predict --config configs/gpt2_mini.yaml --ckpt_path path/to/last.ckpt

The YAML config chooses the model and the datamodule; any init argument can be overridden on the command
line. `python train.py fit --help` and `--print_config` show everything that can be set.
"""

import logging
import re
import shlex
import shutil
import signal
import sys
import tempfile
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks import (
    CheckpointExtras,
    DivergenceGuard,
    FinalValidation,
    HParamsTab,
    StepProgressBar,
    ValidationStep,
)
from callbacks.lightning_internals import last_saved_step
from checkpoints import read_checkpoint
from errors import UserInputError


def quiet_library_messages() -> None:
    """Silence, by message and module, what the libraries say that a learner can do nothing about; warnings
    about the user's own settings still show. Called while a `LabCLI` runs, inside `warnings.catch_warnings`,
    so importing this module (or the lab's packages) changes no global filter."""
    # Data loads in-process by default (num_workers: 0), which Lightning warns about on every run:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # Lightning 2.6's own use of a torch API that newer torch deprecates:
    pytree = r"lightning\.pytorch\.utilities\._pytree"
    warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)", module=pytree)
    # A resumed run (or predict) logs to a new version_N folder, where the best checkpoint is tracked anew:
    model_checkpoint = r"lightning\.pytorch\.callbacks\.model_checkpoint"
    warnings.filterwarnings("ignore", "The dirpath has changed from", module=model_checkpoint)
    # The model summary's size estimate under bf16-mixed:
    warnings.filterwarnings("ignore", "Precision bf16-mixed is not supported by the model summary")


def _no_cloud_tips(record: logging.LogRecord) -> bool:
    """Lightning's advertisements for its cloud services, at the start of every run, left out."""
    return "💡 Tip:" not in record.getMessage()


class LabCLI(LightningCLI):
    """LightningCLI with the links between a datamodule and the model it feeds, and the lab's safety nets.

    Every run gets crash-safe checkpoint writes that overlap training (`AtomicCheckpointIO`), random-generator
    states in its checkpoints for exact resume (`CheckpointExtras`), a stop at the first NaN loss
    (`DivergenceGuard`), a last validation when it stops between two (`FinalValidation`), its validation
    metrics at the step of its pictures (`ValidationStep`), and a row in TensorBoard's HPARAMS tab
    (`HParamsTab`). Options are checked before anything is built or trained: a wrong checkpoint,
    `max_steps 0` or an output folder that cannot be written is a one-line error, not a traceback half-way
    through a run. A fit stopped by Ctrl-C or SIGTERM says how to resume it (`fit`).
    """

    _checkpoint_hparams: dict[str, Any] | None = None  # of the --ckpt_path file, read and checked once

    def __init__(self, *args: Any, trainer_defaults: dict[str, Any] | None = None, **kwargs: Any) -> None:
        command = kwargs.get("args")
        self.command = [str(a) for a in command] if isinstance(command, list) else sys.argv[1:]  # for the resume hint
        defaults = {
            "callbacks": [CheckpointExtras(), DivergenceGuard(), FinalValidation(), ValidationStep(), HParamsTab()],
            "plugins": {"class_path": "checkpoints.AtomicCheckpointIO", "init_args": {"background": True}},
        }
        lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
        lightning_log.addFilter(_no_cloud_tips)
        try:
            with warnings.catch_warnings():
                quiet_library_messages()
                super().__init__(*args, trainer_defaults={**defaults, **(trainer_defaults or {})}, **kwargs)
        finally:
            lightning_log.removeFilter(_no_cloud_tips)
        if getattr(self, "trainer", None) is not None:
            close_processes(self.trainer)

    def add_arguments_to_parser(self, parser) -> None:
        # The text decides the vocabulary, and the (possibly shortened) window decides the context length.
        # Models without these arguments ignore the links.
        parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.chars", "model.init_args.chars", apply_on="instantiate")
        parser.link_arguments("data.block_size", "model.init_args.block_size", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # Here, before LightningCLI reads the checkpoint's hyperparameters, so a bad file gets a clear error.
        subcommand = self.config.get("subcommand")
        if subcommand is not None:
            config = self.config[subcommand]
            self._checkpoint_hparams = self._check_checkpoint(config)
            if subcommand == "fit" and config.trainer.max_steps == 0:
                raise UserInputError(
                    "--trainer.max_steps 0 trains nothing: give a positive number (or -1 for no limit)."
                )
            _check_writable(Path(config.trainer.default_root_dir or "."))

    def _check_checkpoint(self, config) -> dict[str, Any] | None:
        if not config.get("ckpt_path"):
            return None
        model_class = str(config.model.class_path).rpartition(".")[2]
        return read_checkpoint(config.ckpt_path, model=model_class).get("hyper_parameters", {})

    def before_instantiate_classes(self) -> None:
        # LightningCLI has already taken the model's arguments from the checkpoint; the data must then
        # cut windows of the checkpoint's context length rather than the config's.
        config = self.config[self.subcommand] if self.subcommand else self.config  # without one: run=False
        model_args, data_args = config.model.init_args, config.data.init_args
        if self._checkpoint_hparams is not None and "block_size" in model_args and "block_size" in data_args:
            data_args.block_size = model_args.block_size

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with the lab's step-counting progress bar unless the bar is off or the config brings one."""
        config = (self.config_init[self.subcommand] if self.subcommand else self.config_init).trainer
        callbacks = list(config.callbacks or [])
        if config.enable_progress_bar is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, StepProgressBar()]
        if config.logger in (None, True):  # Lightning's default logger, without its placeholder metric (HParamsTab)
            kwargs["logger"] = TensorBoardLogger(config.default_root_dir or ".", default_hp_metric=False)
        return super().instantiate_trainer(**kwargs)

    def fit(self, **kwargs: Any) -> None:
        """`trainer.fit`, and what a stopped fit leaves behind: no run folder when it stopped before its first
        checkpoint, and after Ctrl-C or SIGTERM the checkpoint kept, the command that resumes from it, and the
        shell's exit status for the signal (130, 143) so that a script can tell it from a finished run."""
        try:
            self.trainer.fit(**kwargs)
        except BaseException as stop:
            kept = self._kept_checkpoint()
            if kept is None:
                self._remove_run_folder()
            signum = interrupting_signal(stop)
            if signum is None:
                raise
            if self.trainer.is_global_zero:
                print(self._resume_hint(signum, kept), file=sys.stderr)
            raise SystemExit(128 + signum) from None

    def _kept_checkpoint(self) -> tuple[Path, int] | None:
        """A checkpoint this fit wrote, and the step of the newest that its callback saved: last.ckpt where there
        is one, else the best."""
        callbacks = self.trainer.checkpoint_callbacks
        for path, callback in [(c.last_model_path, c) for c in callbacks] + [(c.best_model_path, c) for c in callbacks]:
            if path and Path(path).is_file():
                return Path(path), last_saved_step(callback)
        return None

    def _remove_run_folder(self) -> None:
        """A fit that stopped before writing a checkpoint has nothing to resume or compare: no empty version_N
        folder (a config.yaml and an events file) is left to show in TensorBoard."""
        logger = self.trainer.logger
        folder = Path(logger.log_dir) if self.trainer.is_global_zero and logger and logger.log_dir else None
        if folder is not None and folder.is_dir() and not any(folder.rglob("*.ckpt")):
            shutil.rmtree(folder, ignore_errors=True)

    def _resume_hint(self, signum: int, kept: tuple[Path, int] | None) -> str:
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        lines = [f"Stopped by {what} at step {self.trainer.global_step}."]
        if kept is None:
            lines.append("No checkpoint had been written yet, so there is nothing to resume (no run folder is kept).")
            return "\n".join(lines)
        path, step = kept
        command = [*without_option(self.command, "--ckpt_path"), "--ckpt_path", _shown(path)]
        lines += [
            f"Run folder: {_shown(self.trainer.logger.log_dir)}" if self.trainer.logger else "",
            f"Checkpoint kept: {_shown(path)} (step {step})",
            f"Resume with: {shlex.join(['python', 'train.py', *command])}",
        ]
        return "\n".join(line for line in lines if line)

    def after_fit(self) -> None:
        """Say where the run's outputs are: its folder, the checkpoints to resume or sample from, TensorBoard."""
        trainer = self.trainer
        log_dir = trainer.log_dir  # a collective call under DDP: every process must make it
        if not trainer.is_global_zero or log_dir is None or trainer.fast_dev_run:
            return
        lines = [f"Run folder: {_shown(log_dir)}"]
        last = next((c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path), "")
        if last:
            lines.append(f"Last checkpoint (resume with --ckpt_path): {_shown(last)}")
        for callback in trainer.checkpoint_callbacks:
            if callback.monitor and callback.best_model_path:
                score = callback.best_model_score  # None after a resume that has not validated yet
                by = f"{callback.monitor} {score:.4f}" if score is not None else f"by {callback.monitor}"
                lines.append(f"Best checkpoint ({by}): {_shown(callback.best_model_path)}")
        if trainer.logger is not None and trainer.logger.save_dir:
            lines.append(f"Watch it: tensorboard --logdir {_shown(trainer.logger.save_dir)}")
        print("\n".join(lines))

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self._checkpoint_hparams is None:
            return
        wanted = self._checkpoint_hparams.get("block_size")
        have = getattr(self.datamodule, "block_size", wanted)
        if wanted is not None and have != wanted:
            raise UserInputError(
                f"The text is too short for this checkpoint: its model reads windows of {wanted} characters, "
                f"the data has none longer than {have}. Use a longer --data.data_path."
            )


def close_processes(trainer: Trainer) -> None:
    """End a multi-process run in order, while every part of it is still there to answer.

    Left to interpreter exit, the process group (gloo's threads, and on rank 0 the TCP store that the other
    ranks talk to) is destroyed in no particular order with the rest of the process, which at times ends a
    finished run with "terminate called without an active exception" (SIGABRT). Here every rank meets the
    others once more, then closes its process group, and rank 0 waits for the processes it started.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    for child in getattr(trainer.strategy.launcher, "procs", []):
        child.wait()


def _shown(path: str | Path) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _check_writable(folder: Path) -> None:
    """Fail now, with the folder's name, rather than at the first log line or checkpoint; create nothing (the
    folder is made when the run writes to it, and a run that fails first leaves none)."""
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a folder", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserInputError(
            f"Cannot write to the output folder {folder} ({err.strerror or err}). "
            "Choose another with --trainer.default_root_dir."
        ) from None


def main(args: list[str] | None = None) -> None:
    try:
        LabCLI(args=args, parser_kwargs={"exit_on_error": False})
    except ArgumentError as err:
        subcommand = next((a for a in (args if args is not None else sys.argv[1:]) if not a.startswith("-")), "fit")
        hint = f"Run `python train.py {subcommand} --help` to see every option."
        sys.stderr.write(f"error: {explain_parse_error(str(err))}\n{hint}\n")
        sys.exit(2)
    except KeyboardInterrupt:  # before training started (a fit's own Ctrl-C is handled by LabCLI.fit)
        sys.stderr.write("Stopped by Ctrl-C before training started.\n")
        sys.exit(128 + signal.SIGINT)
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        sys.exit(f"error: {user_error}")


def explain_parse_error(message: str) -> str:
    """jsonargparse's report on a bad option, cut down to the option, what it expects and what it got.

    For a model or data option it explains why each union member failed to match; the one that matters
    is the configured class's, nested under "Problem with given class_path".
    """
    missing_config = re.match(r'Parser key "config": File does not exist: (.*)', message)
    if missing_config:
        return f"Config file not found: {missing_config.group(1)}."
    prefix, owner = "", None
    nested = re.search(r'Parser key "([^"]+)".*?class_path \'[^\']*?(\w+)\':\n(.*?)\n\s*- ', message, re.S)
    if nested:
        prefix, owner, message = nested.group(1) + ".", nested.group(2), nested.group(3)
    unknown = re.search(r"Option '(\w+)' is not accepted", message)
    if unknown:
        return f"{prefix}{unknown.group(1)} is not an option of {owner}."
    wrong = re.search(r'Parser key "([^"]+)":\s*Expected a (.*?)\. Got value: (.*)', message, re.S)
    if wrong:
        key, expected, value = wrong.groups()
        expected = re.sub(r"typing\.Literal\[(.*)\]", r"one of \1", re.sub(r"<class '(\w+)'>", r"\1", expected))
        return f"{prefix}{key} expects {expected}, got {value.strip()!r}."
    return " ".join(message.split())


def find_user_error(err: BaseException | None) -> str | None:
    """What the user should read about `err`: the message of the `UserInputError` or of Lightning's
    `MisconfigurationException` (a bad trainer or callback setting) behind it, if any; jsonargparse wraps
    errors raised while it builds objects."""
    while err is not None:
        if isinstance(err, UserInputError):
            return str(err)
        if isinstance(err, MisconfigurationException):
            duration = re.match(r"`Timer\(duration='(.*)'\)` is not a valid duration", str(err))
            if duration:
                return (
                    f"--trainer.max_time {duration.group(1)!r} is not a duration: write days:hours:minutes:seconds, "
                    "e.g. 00:00:02:00 for two minutes."
                )
            return str(err)
        err = err.__cause__ or err.__context__
    return None


def interrupting_signal(stop: BaseException) -> int | None:
    """The signal that stopped a fit, if one did: Lightning ends a fit on SIGTERM with `SIGTERMException`, and
    on Ctrl-C with `sys.exit(1)` while it handles the `KeyboardInterrupt`."""
    if isinstance(stop, SIGTERMException):
        return signal.SIGTERM
    if isinstance(stop, KeyboardInterrupt) or isinstance(stop.__context__, KeyboardInterrupt):
        return signal.SIGINT
    return None


def without_option(args: list[str], option: str) -> list[str]:
    """`args` without `option` and its value (given as `--option value` or `--option=value`)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            kept.append(arg)
    return kept


if __name__ == "__main__":
    main()
