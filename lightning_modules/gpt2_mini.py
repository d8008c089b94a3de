"""GPT2Mini: a character-level GPT-2-style transformer (the `GPT` network), and how it trains and generates."""

import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from tqdm import tqdm

from checkpoints import upgrade
from datamodules.char_tokenizer import CharTokenizer
from errors import UserInputError
from lightning_modules.lr_schedule import LRSchedule
from lightning_modules.optimizers import MuonWithAdamW, check_muon_settings, muon_matrices
from lightning_modules.transformer import GPT, GPTConfig, KVCache

SEPARATOR = "\n" + "-" * 40 + "\n"  # after each text predict prints, as between them in TextPredictionWriter's file


class GPT2Mini(pl.LightningModule):
    """Trains a `GPT` network on next-character prediction and generates text with it.

    `**network` are the network's size and switches, the fields of `GPTConfig` (`vocab_size`, `n_layer`,
    `n_head`, `n_embd`, `block_size`, `dropout`, `ln_style`, `norm`, ...), with its defaults (GPT-2's);
    each switch is documented where it acts: `Block`, `CausalSelfAttention` and `GPT`. The learning rate
    follows `LRSchedule` (`learning_rate`, `warmup_steps`, `lr_decay_steps`, `min_lr`); AdamW with `betas`
    decays the weight matrices by `weight_decay`. `optimizer="muon"` hands the matrices inside the blocks to
    Muon instead (`MuonWithAdamW`), with its own peak rate `muon_lr` (on the same schedule) and momentum
    `muon_momentum`; the embeddings, head, norms and biases stay on AdamW.

    `chars`, when given, is the vocabulary in token order; it is saved in checkpoints so that a model loaded
    with `load_from_checkpoint` can encode and decode text without its training data. `max_new_tokens`,
    `temperature` and `top_k` are the generation settings `predict` uses; they are not part of the model and
    are not saved with it, nor is `compile` (torch.compile for the training and validation loss; off by
    default: see the README for what it does on a CPU).
    """

    # The experiment switches: the first columns of TensorBoard's HPARAMS tab (callbacks.HParamsTab).
    SWITCHES = ("ln_style", "disable_residual", "disable_attention", "disable_mlp", "attn_impl", "bias", "norm",
                "pos_emb", "mlp", "n_kv_head", "tie_weights")  # fmt: skip

    def __init__(
        self,
        *,
        learning_rate: float = 3e-4,
        weight_decay: float = 0.1,
        warmup_steps: int = 100,
        lr_decay_steps: int | None = None,
        min_lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.95),
        optimizer: Literal["adamw", "muon"] = "adamw",
        muon_lr: float = 0.02,
        muon_momentum: float = 0.95,
        compile: bool = False,
        chars: list[str] | None = None,
        max_new_tokens: int = 500,
        temperature: float = 1.0,
        top_k: int | None = None,
        **network: Any,
    ) -> None:
        super().__init__()
        config = GPTConfig(**network)
        LRSchedule(learning_rate, warmup_steps, lr_decay_steps, min_lr)  # checks the settings now, not at fit
        check_muon_settings(muon_lr, muon_momentum)
        if chars is not None and len(chars) != config.vocab_size:
            raise UserInputError(
                f"chars has {len(chars)} characters but vocab_size is {config.vocab_size}; they must match."
            )
        self.save_hyperparameters(ignore=["compile", "max_new_tokens", "temperature", "top_k"])
        self.hparams.update(asdict(config))  # every network setting, defaults too: a checkpoint rebuilds this network
        self.tokenizer = CharTokenizer(chars) if chars is not None else None
        self.max_new_tokens, self.temperature, self.top_k = max_new_tokens, temperature, top_k
        self.gpt = GPT(config)
        # torch.compile (on first call) for the training and validation loss; generation stays eager.
        self._loss_fn = torch.compile(self.loss) if compile else self.loss

    def forward(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Token ids (B, T) -> next-token logits (B, T, vocab_size); see `GPT.forward` for `caches`."""
        return self.gpt(idx, caches)

    # ---- training -------------------------------------------------------------------------------

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the next-token predictions for `idx` (B, T) against `targets` (B, T)."""
        logits = self(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss_fn(*batch)
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # logging costs ~1 ms: only when written
            self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss_fn(*batch), prog_bar=True, sync_dist=True, batch_size=batch[0].size(0))

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("test_loss", self.loss(*batch), sync_dist=True, batch_size=batch[0].size(0))

    def configure_optimizers(self) -> dict[str, Any]:
        # Decay the weight matrices (and embeddings); leave biases and LayerNorm gains alone. With Muon, the
        # matrices inside the blocks are Muon's and the decay group keeps the embeddings (and an untied head).
        hp = self.hparams
        muon_params = muon_matrices(self.gpt) if hp.optimizer == "muon" else []
        muon_owned = {id(p) for p in muon_params}
        params = [p for p in self.parameters() if p.requires_grad and id(p) not in muon_owned]
        groups = [
            {"name": "decay", "params": [p for p in params if p.dim() >= 2], "weight_decay": hp.weight_decay},
            {"name": "no_decay", "params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        if muon_params:
            optimizer = MuonWithAdamW(muon_params, groups, lr=hp.learning_rate, betas=tuple(hp.betas),
                                      muon_lr=hp.muon_lr, muon_momentum=hp.muon_momentum,
                                      muon_weight_decay=hp.weight_decay)  # fmt: skip
        else:
            optimizer = torch.optim.AdamW(groups, lr=hp.learning_rate, betas=tuple(hp.betas))
        schedule = LRSchedule.of(hp).scheduler(optimizer, run_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        upgrade(checkpoint, "GPT2Mini")
        trained_with = checkpoint.get("hyper_parameters", {}).get("optimizer", "adamw")
        resuming = self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING
        if resuming and trained_with != self.hparams.optimizer:
            raise UserInputError(
                f"The checkpoint was trained with --model.optimizer {trained_with}, and this run asks for "
                f"{self.hparams.optimizer}: its optimizer state cannot carry over. Resume with --model.optimizer "
                f"{trained_with}, or start a new run (without --ckpt_path) to train with {self.hparams.optimizer}."
            )
        saved = checkpoint.get("hyper_parameters", {}).get("chars")
        if saved is not None and self.hparams.chars is not None and list(saved) != list(self.hparams.chars):
            raise UserInputError(
                f"The checkpoint was trained on a text with a different vocabulary ({len(saved)} characters) "
                f"from this run's data ({len(self.hparams.chars)} characters). "
                "Pass the same --data.data_path the checkpoint was trained with."
            )

    # ---- generation -----------------------------------------------------------------------------

    def generate(self, idx: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Extend each row of `idx` (B, T) by `max_new_tokens` sampled tokens: `generate_tokens`'s arguments.

        The model sees at most the last `block_size` tokens. `temperature=0` picks the most likely token
        (greedy); `top_k` samples only among the k most likely. `use_cache` keeps each layer's keys and
        values so a new token costs one position's work; the tokens are the same as without it. Once the
        text outgrows `block_size` the window slides, every position shifts, and the cache is refilled from
        the last `block_size` tokens at each step: from there on a token costs a full window, as without it.
        The tokens come from `generate_tokens`, which hands out each one as soon as it is picked.
        """
        return torch.cat((idx, *self.generate_tokens(idx, *args, **kwargs)), dim=1)

    @torch.inference_mode()  # on a generator, torch enters the mode at each resume and leaves it at each yield
    def generate_tokens(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
    ) -> Iterator[torch.Tensor]:
        """Yield the tokens `generate` appends to `idx` (B, T), one (B, 1) tensor at a time, as each is picked.

        A 500-character answer takes tens of seconds on a CPU, so a caller that shows each token as it comes
        (`generate_text(on_text=...)`) is not silent all that time. The model is in eval mode while the loop
        runs and goes back to its previous mode when the loop ends, fails, or is left part-way (a `break`, or
        `close()`): the `finally` below runs then too.
        """
        if temperature < 0:
            raise UserInputError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
        if top_k is not None and top_k < 1:
            raise UserInputError(f"top_k must be at least 1, got {top_k}.")
        block_size = self.gpt.block_size
        was_training = self.training
        self.eval()
        try:
            caches: list[KVCache] = []
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits = self(idx[:, -block_size:])
                elif caches and len(caches[0]) < block_size:
                    logits = self(idx[:, -1:], caches)  # only the newest token is new to the cache
                else:
                    caches = [KVCache(block_size) for _ in self.gpt.blocks]
                    logits = self(idx[:, -block_size:], caches)
                idx_next = self._pick_next(logits[:, -1, :], temperature, top_k)
                idx = torch.cat((idx, idx_next), dim=1)
                yield idx_next
        finally:
            self.train(was_training)

    @staticmethod
    def _pick_next(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
        if temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)

    def generate_text(
        self,
        prompt: str,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """Continue `prompt`; returns the prompt followed by `max_new_tokens` new characters.

        `on_text`, when given, is called with each new character as soon as it is picked, so that the text
        can be shown while it is written: `on_text=lambda ch: print(ch, end="", flush=True)`.
        """
        if self.tokenizer is None:
            raise UserInputError("This model has no vocabulary: build it with `chars=` or load it from a checkpoint.")
        if not prompt:
            raise UserInputError("The prompt is empty: give at least one character to start from, e.g. a newline.")
        idx = torch.tensor([self.tokenizer.encode(prompt)], dtype=torch.long, device=self.device)
        new_tokens: list[torch.Tensor] = []
        for idx_next in self.generate_tokens(idx, max_new_tokens, temperature, top_k):
            new_tokens.append(idx_next)
            if on_text is not None:  # reading the token waits for the device: only when someone is watching
                on_text(self.tokenizer.decode(idx_next[0].tolist()))
        return self.tokenizer.decode(torch.cat((idx, *new_tokens), dim=1)[0].tolist())

    def predict_step(self, batch: list[str], batch_idx: int) -> list[str]:
        """Continue each prompt. Process 0 prints each text as it is generated, followed by `SEPARATOR`;
        `TextPredictionWriter` writes all of them to a file at the end and prints the other processes' texts."""
        settings = (self.max_new_tokens, self.temperature, self.top_k)
        if not self.trainer.is_global_zero:
            return [self.generate_text(prompt, *settings) for prompt in batch]
        texts = []
        for prompt in batch:
            with tqdm.external_write_mode(file=sys.stdout):  # the progress bar steps aside while the text is printed
                print(prompt, end="", flush=True)
                texts.append(self.generate_text(prompt, *settings, on_text=_print_now))
                print(end=SEPARATOR, flush=True)
        return texts


def _print_now(text: str) -> None:
    print(text, end="", flush=True)
