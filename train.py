"""One command line for every model in the lab.

    python train.py fit --config configs/gpt2_mini.yaml
    python train.py fit --config configs/gpt2_mini.yaml --model.ln_style post --trainer.max_steps 100
    python train.py predict --config configs/gpt2_mini.yaml --ckpt_path path/to/last.ckpt

The YAML config chooses the model and the datamodule; any init argument can be overridden on the command
line. `python train.py fit --help` and `--print_config` show everything that can be set.
"""

import sys
import warnings
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from errors import UserInputError

# Data loading here is in-process by default (num_workers: 0), which Lightning warns about on every run.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


class LabCLI(LightningCLI):
    """LightningCLI with the links between a datamodule and the model it feeds."""

    def add_arguments_to_parser(self, parser) -> None:
        # The text decides the vocabulary, and the (possibly shortened) window decides the context length.
        # Models without these arguments ignore the links.
        parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.chars", "model.init_args.chars", apply_on="instantiate")
        parser.link_arguments("data.block_size", "model.init_args.block_size", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        ckpt_path = config.get("ckpt_path")
        if not ckpt_path:
            return
        if not Path(ckpt_path).is_file():
            raise UserInputError(
                f"Checkpoint not found: {ckpt_path}. Runs keep theirs under "
                "<default_root_dir>/lightning_logs/version_N/checkpoints/ (last.ckpt is the newest)."
            )
        # LightningCLI has already taken the model's arguments from the checkpoint; the data must then
        # cut windows of the checkpoint's context length rather than the config's.
        model_args, data_args = config.model.init_args, config.data.init_args
        if "block_size" in model_args and "block_size" in data_args:
            data_args.block_size = model_args.block_size


def main(args: list[str] | None = None) -> None:
    try:
        LabCLI(args=args)
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        sys.exit(f"error: {user_error}")


def find_user_error(err: BaseException | None) -> UserInputError | None:
    """The `UserInputError` behind `err`, if any: jsonargparse wraps errors raised while it builds objects."""
    while err is not None:
        if isinstance(err, UserInputError):
            return err
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
