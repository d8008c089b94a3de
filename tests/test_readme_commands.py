"""Every command the README and the docs show parses: its configs exist and every option is one the lab has.

The commands are read out of the documents' shell blocks, so a renamed option, a config that moved or a
flag that no longer exists fails here rather than in a reader's terminal. train.py commands are parsed
with `--print_config` (nothing is built or trained); the other commands with their own argument parsers.
"""

import re
import shlex
from pathlib import Path

import pytest

import generate
import train
from benchmarks import time_to_target
from experiments import ablation, induction, intervene, quality, scaling
from experiments.runs import CONFIGS, config_args
from tiny import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PARSERS = {  # the module a `python -m` command runs -> a function that parses its arguments without running
    "experiments.ablation": ablation.parse_args,
    "experiments.scaling": scaling.parse_args,
    "experiments.quality": quality.parse_args,
    "experiments.intervene": intervene.parse_args,
    "experiments.induction": induction.parse_args,
    "generate.py": generate.parse_args,
    "benchmarks.time_to_target": time_to_target.parse_args,
}


def shell_commands(path: Path) -> list[str]:
    """The commands in a document's ```bash blocks, continuation lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def lab_commands() -> list[tuple[str, list[str]]]:
    """(where, words) of each different command of the lab's that the documents show."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in DOCUMENTS:
        for command in shell_commands(path):
            words = shlex.split(command)
            if words[:2] == ["python", "train.py"] or words[0] == "python" and (
                words[1] == "generate.py" or words[1:3] == ["-m", words[2]] and words[2] in PARSERS
            ):
                found.setdefault(command, (f"{path.name}: {command}", words))
    return list(found.values())


COMMANDS = lab_commands()


def test_the_documents_show_the_main_commands():
    shown = {words[1] if words[1] != "-m" else words[2] for _, words in COMMANDS}
    assert {"train.py", "generate.py", "experiments.ablation", "experiments.quality", "experiments.scaling"} <= shown
    assert len(COMMANDS) > 30


@pytest.mark.slow  # each train.py command loads its configs and builds the whole parser: about a second
@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_every_command_in_the_documents_parses(where, words, capsys):
    if words[1] == "train.py":
        with pytest.raises(SystemExit) as exit_info:
            train.main([*words[2:], "--print_config"])
        assert exit_info.value.code in (0, None), capsys.readouterr().err
        assert "model:" in capsys.readouterr().out
        return
    module = words[1] if words[1] == "generate.py" else words[2]
    arguments = words[2:] if words[1] == "generate.py" else words[3:]
    parsed = PARSERS[module](arguments)  # a bad option exits (SystemExit) with argparse's message
    if module in ("experiments.ablation", "experiments.scaling"):  # options it passes on to train.py
        args, passthrough = parsed
        configs = ablation.PRESETS[args.preset].configs if module == "experiments.ablation" else CONFIGS["gpt2_mini"]
        with pytest.raises(SystemExit) as exit_info:
            train.main(["fit", *config_args(configs), *passthrough, "--print_config"])
        assert exit_info.value.code in (0, None), capsys.readouterr().err
