"""Generate text from a GPT2Mini checkpoint, once or interactively.

    python generate.py runs/gpt2_mini/lightning_logs/version_0/checkpoints/last.ckpt --prompt "The "
    python generate.py path/to/last.ckpt --interactive

Interactive mode reads one prompt per line from stdin and prints its continuation; an empty line starts
from a newline. It ends on EOF (Ctrl-D) or Ctrl-C. Both modes print each character as soon as it is picked.
"""

import argparse
import sys
from pathlib import Path

import torch

from checkpoints import read_checkpoint
from errors import UserInputError
from lightning_modules import GPT2Mini


def load_model(ckpt_path: str, device: str = "cpu") -> GPT2Mini:
    """A GPT2Mini ready to generate, or a `UserInputError` saying why the file cannot give one."""
    path = Path(ckpt_path)
    read_checkpoint(path, model="GPT2Mini")
    try:
        model = GPT2Mini.load_from_checkpoint(path, map_location=device)
    except Exception as err:
        raise UserInputError(f"{path} is not a GPT2Mini checkpoint that can be loaded ({type(err).__name__}: {err}).") from None
    if model.tokenizer is None:
        raise UserInputError(f"{path} has no vocabulary saved with it, so it cannot turn text into tokens.")
    return model.eval()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt_path", help="a GPT2Mini .ckpt file, e.g. .../checkpoints/last.ckpt")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--max_new_tokens", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=1.0, help="0 picks the most likely character")
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--interactive", action="store_true", help="read prompts from stdin in a loop")
    return parser.parse_args(argv)


def interactive(model: GPT2Mini, args: argparse.Namespace) -> None:
    print("Type a prompt and press Enter (Ctrl-D or Ctrl-C to quit).", file=sys.stderr)
    while True:
        try:
            prompt = input("> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        try:
            print_generated(model, prompt or "\n", args)
        except UserInputError as err:
            print(f"error: {err}", file=sys.stderr)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return


def print_generated(model: GPT2Mini, prompt: str, args: argparse.Namespace) -> None:
    """Print `prompt`, then each new character as soon as it is picked (a long answer takes tens of
    seconds on a CPU), then a newline."""
    model.generate_text(prompt, 0, args.temperature, args.top_k)  # a bad prompt or setting: its error, first
    print(prompt, end="", flush=True)
    model.generate_text(prompt, args.max_new_tokens, args.temperature, args.top_k, on_text=print_now)
    print()


def print_now(text: str) -> None:
    print(text, end="", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    try:
        model = load_model(args.ckpt_path, args.device)
        if args.interactive:
            interactive(model, args)
        else:
            print_generated(model, args.prompt, args)
    except UserInputError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
