"""Character-level tokenizer: one token per distinct character, in sorted order."""

from errors import UserInputError


class CharTokenizer:
    """Maps characters to ids and back.

    It is rebuilt from `chars` (a plain list of strings), which is all a checkpoint needs to store.
    """

    def __init__(self, chars: list[str]) -> None:
        if not chars:
            raise UserInputError("The vocabulary is empty: a character tokenizer needs at least one character.")
        self.chars = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            shown = ", ".join(repr(ch) for ch in unknown)
            raise UserInputError(
                f"The text has characters the model never saw in training: {shown}. "
                "Use only characters from the training text (see `tokenizer.chars`)."
            )
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)
