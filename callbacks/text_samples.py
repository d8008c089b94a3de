"""Generates text from a fixed prompt during training and logs it to TensorBoard."""

from typing import Protocol, runtime_checkable

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from callbacks.periodic_sampler import PeriodicSampler
from callbacks.tags import SAMPLES
from errors import UserInputError


@runtime_checkable
class TextGenerator(Protocol):
    """What this callback needs of a model: a way to continue a prompt."""

    def generate_text(self, prompt: str, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None) -> str:
        ...


class TextSampleCallback(PeriodicSampler):
    """At each validation end, and every `every_n_steps` training steps if set, continues `prompt`.

    With no `prompt` it continues the datamodule's first predict prompt (for `CharDataModule`: a newline,
    or the text's first character when it has none), else a newline. The sample goes to TensorBoard's
    Text tab (tag `samples`), and to the console when `verbose`.
    """

    def __init__(
        self,
        prompt: str | None = None,
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        every_n_steps: int | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(every_n_steps)
        self.prompt = prompt
        self._prompt = prompt or "\n"  # what is continued: `prompt`, or the data's choice (see `setup`)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_k = top_k
        self.verbose = verbose

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Pick and check the prompt before anything runs (fit or validate), not at the first validation end."""
        if not isinstance(pl_module, TextGenerator):
            name = type(pl_module).__name__
            raise TypeError(f"TextSampleCallback needs a model with generate_text(); {name} has none.")
        self._prompt = self.prompt or (getattr(trainer.datamodule, "prompts", None) or ["\n"])[0]
        try:
            pl_module.generate_text(self._prompt, 0)
        except UserInputError as err:
            raise UserInputError(
                f"TextSampleCallback's prompt {self._prompt!r} does not fit this text: {err} "
                "Set the callback's prompt in the config to a few characters of your text."
            ) from None

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        text = pl_module.generate_text(self._prompt, self.max_new_tokens, self.temperature, self.top_k)
        if isinstance(trainer.logger, TensorBoardLogger):
            # Markdown would swallow single newlines; a code block shows the text as generated.
            trainer.logger.experiment.add_text(SAMPLES, "```\n" + text + "\n```", trainer.global_step)
        if self.verbose:
            rank_zero_info(f"\n--- sample at step {trainer.global_step} ---\n{text}\n")
