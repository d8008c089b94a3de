"""Generates text from a fixed prompt during training and logs it to TensorBoard."""

from typing import Protocol, runtime_checkable

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info


@runtime_checkable
class TextGenerator(Protocol):
    """What this callback needs of a model: a way to continue a prompt."""

    def generate_text(self, prompt: str, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None) -> str:
        ...


class TextSampleCallback(pl.Callback):
    """At each validation end, and every `every_n_steps` training steps if set, continues `prompt`.

    The sample goes to TensorBoard's Text tab (tag `samples`), and to the console when `verbose`.
    """

    def __init__(
        self,
        prompt: str = "\n",
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        every_n_steps: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_k = top_k
        self.every_n_steps = every_n_steps
        self.verbose = verbose

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._sample(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._sample(trainer, pl_module)

    def _sample(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if not isinstance(pl_module, TextGenerator):
            raise TypeError(f"TextSampleCallback needs a model with generate_text(); {type(pl_module).__name__} has none.")
        text = pl_module.generate_text(self.prompt, self.max_new_tokens, self.temperature, self.top_k)
        if isinstance(trainer.logger, TensorBoardLogger):
            # Markdown would swallow single newlines; a code block shows the text as generated.
            trainer.logger.experiment.add_text("samples", "```\n" + text + "\n```", trainer.global_step)
        if self.verbose:
            rank_zero_info(f"\n--- sample at step {trainer.global_step} ---\n{text}\n")
