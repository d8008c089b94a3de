"""CharDataModule: a text file as next-character prediction windows."""

import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.char_tokenizer import CharTokenizer
from datamodules.loaders import make_loader
from datamodules.resumable import ResumableLoader
from errors import UserInputError

EMBEDDED_CORPUS = Path(__file__).parent / "corpus" / "lab_notes.txt"


class RandomWindows(Dataset):
    """Every window of `block_size + 1` tokens; a shuffled loader makes these nanoGPT's random windows."""

    def __init__(self, data: torch.Tensor, block_size: int) -> None:
        self.data, self.block_size = data, block_size

    def __len__(self) -> int:
        return len(self.data) - self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.data[i : i + self.block_size + 1]
        return chunk[:-1], chunk[1:]


class TilingWindows(RandomWindows):
    """Windows laid end to end so each target token is scored once: a deterministic pass over the split."""

    def __init__(self, data: torch.Tensor, block_size: int) -> None:
        super().__init__(data, block_size)
        last = len(data) - block_size - 1
        self.starts = list(range(0, last + 1, block_size))
        if self.starts[-1] != last:  # the tail that does not fill a whole window
            self.starts.append(last)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return super().__getitem__(self.starts[i])


class CharDataModule(pl.LightningDataModule):
    """Reads a UTF-8 text file, builds a character vocabulary, and splits it into train and validation.

    With no `data_path` it uses the lab notes that ship with the project, so training works offline.
    The last `val_fraction` of the text is the validation split. `prompts` are what `predict` continues.
    """

    def __init__(
        self,
        data_path: str | None = None,
        block_size: int = 256,
        batch_size: int = 32,
        val_batch_size: int | None = None,
        val_fraction: float = 0.1,
        num_workers: int = 0,
        prompts: list[str] | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0 or block_size <= 0:
            raise UserInputError(f"batch_size and block_size must be positive, got {batch_size} and {block_size}.")
        if not 0.0 < val_fraction < 1.0:
            raise UserInputError(f"val_fraction must be between 0 and 1, got {val_fraction}.")
        if num_workers < 0:
            raise UserInputError(f"num_workers must be 0 or more, got {num_workers}.")
        self.path = Path(data_path) if data_path else EMBEDDED_CORPUS
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        text = read_text(self.path)
        self.tokenizer = CharTokenizer.from_text(text)
        if self.tokenizer.vocab_size < 2:
            raise UserInputError(
                f"{self.path} uses a single character ({text[0]!r}), so there is nothing to predict: "
                "give a text with at least two different characters."
            )
        default_prompt = "\n" if "\n" in self.tokenizer.stoi else text[0]
        self.prompts = self._check_prompts(prompts if prompts is not None else [default_prompt])
        data = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        n_val = max(2, int(len(data) * val_fraction))
        self.train_data, self.val_data = data[:-n_val], data[-n_val:]
        self.block_size = self._fit_block_size(block_size)

    def _check_prompts(self, prompts: list[str]) -> list[str]:
        """Refuse empty prompts and unseen characters now, not part-way through `predict`."""
        for i, prompt in enumerate(prompts):
            if not prompt:
                raise UserInputError(
                    f"Prompt {i} of --data.prompts is empty: give at least one character, e.g. a newline."
                )
            try:
                self.tokenizer.encode(prompt)
            except UserInputError as err:
                raise UserInputError(f"Prompt {i} of --data.prompts ({prompt!r}): {err}") from None
        return prompts

    def _fit_block_size(self, block_size: int) -> int:
        """Shrink block_size, with a warning, when a split is too short for one window of it."""
        longest = min(len(self.train_data), len(self.val_data)) - 1
        if longest < 1:
            raise UserInputError(
                f"{self.path} is too short to train on ({len(self.train_data) + len(self.val_data)} characters): "
                "use a text with at least a few dozen characters."
            )
        if block_size > longest:
            warnings.warn(
                f"{self.path} is too short for block_size {block_size}: using block_size {longest} instead.",
                stacklevel=2,
            )
            return longest
        return block_size

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def chars(self) -> list[str]:
        return self.tokenizer.chars

    def train_dataloader(self) -> DataLoader:
        windows = RandomWindows(self.train_data, self.block_size)
        return ResumableLoader(windows, self.batch_size, self.num_workers, self.trainer)

    def val_dataloader(self) -> DataLoader:
        return make_loader(TilingWindows(self.val_data, self.block_size), self.val_batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        processes = self.trainer.world_size if self.trainer else 1
        if len(self.prompts) < processes:
            raise UserInputError(
                f"{len(self.prompts)} prompt(s) for {processes} processes: each process continues its own prompts. "
                "Give at least as many --data.prompts, or predict with --trainer.devices 1."
            )
        return DataLoader(self.prompts, batch_size=1, collate_fn=list)


def read_text(path: Path) -> str:
    """The whole file as text, or a `UserInputError` that says what is wrong with it."""
    if not path.exists():
        raise UserInputError(f"Data file not found: {path}. Check --data.data_path (leave it unset for the built-in corpus).")
    if path.is_dir():
        raise UserInputError(f"{path} is a directory; --data.data_path must name a UTF-8 text file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserInputError(
            f"{path} is not UTF-8 text (byte {err.start} cannot be decoded). Convert it to UTF-8 first."
        ) from None
    if not text:
        raise UserInputError(f"{path} is empty; give a text file to train on.")
    if "\x00" in text:
        raise UserInputError(
            f"{path} looks like a binary file (it contains NUL bytes), not text. Give a UTF-8 text file."
        )
    return text
