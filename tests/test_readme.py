"""Every command in the README: each names a real command and real options, and the ones that need no dataset run,
in the README's order, against small files and the fast demo's models, so the README cannot drift from the program."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.main import get_command

from estm_cli.app import app
from estm_core import audio

README = Path(__file__).resolve().parents[1] / "README.md"
# Lines that need a real dataset, a long training run, or a model only the user has: checked, not run.
NOT_RUN = ("deam", "DEAM", "CACHE", "TAFFC", "taffc", "GTZAN", "EMOTIFY", "my-music", "synthemo", "split.csv",
           "cache", "evaluations/", "estm train", "estm evaluate", "remove", "--pairs", "--model estm1", "torchrun",
           "sbatch", "make ", "pip ", "data synth", "--test-collection", "models import", "estm2_0.25_24_0.75")


def shell_lines() -> list[str]:
    """The lines of the README's ```sh blocks, continuations joined, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s{2,}#", line)[0].strip()  # comments follow two or more spaces
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def estm_invocations(line: str) -> list[list[str]]:
    """The argument lists of every `estm` call in a shell line (after pipes, `do`, and so on)."""
    words = shlex.split(line, comments=False)
    calls, current = [], None
    for word in words:
        if word == "estm":
            current = []
            calls.append(current)
        elif word in ("|", ";", ">", ">>", "done") or word.endswith(";"):
            if current is not None and word.endswith(";") and word != ";":
                current.append(word[:-1])
            current = None
        elif current is not None:
            current.append(word)
    return calls


def test_the_readme_shows_its_commands():
    lines = shell_lines()
    assert lines[:2] == ["make demo", "make test"]  # the two commands of a fresh machine come first
    assert sum(len(estm_invocations(line)) for line in lines) >= 50


@pytest.mark.parametrize("line", [line for line in shell_lines() if "estm" in line])
def test_every_readme_command_and_option_exists(line):
    root = get_command(app)
    for arguments in estm_invocations(line):
        command, rest = root, list(arguments)
        while rest and hasattr(command, "commands") and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        assert not hasattr(command, "commands") or rest == ["--help"], f"{line}: no such command"
        options = {"--help", "-h"} | {name for parameter in command.params
                                      for name in (*parameter.opts, *parameter.secondary_opts)}
        for word in rest:
            if word.startswith("-") and word != "-" and not re.fullmatch(r"-?\d+(\.\d+)?", word):
                assert word.split("=")[0] in options, f"{line}: {command.name} has no option {word}"


def test_the_readme_commands_run(demo_store, tmp_path):
    """Every line that needs no dataset runs, in the README's order, in a folder holding the files it names."""
    corpus = demo_store / "corpus"
    pairs = pd.read_csv(corpus / "pairs.csv")
    content, rate = audio.load(corpus / pairs["Q3"][0])
    emotion, _ = audio.load(corpus / pairs["Q1"][1])
    other, _ = audio.load(corpus / pairs["Q2"][2])
    files = {"content.wav": content, "emotion.wav": emotion, "song.mp3": emotion, "intro.wav": other,
             "long-mix.flac": other, "album/one.wav": content, "album/two.flac": other, "takes/one.wav": emotion,
             "music/one.mp3": content, "music/two.mp3": other}
    for name, samples in files.items():
        audio.save(tmp_path / name, samples, rate)
    environment = {**os.environ, "ESTM_HOME": os.environ["ESTM_HOME"],
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for line in shell_lines():
        if "estm" not in line or any(marker in line for marker in NOT_RUN):
            continue
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        ran += 1
    assert ran >= 20
    assert (tmp_path / "out.wav").is_file() and (tmp_path / "Q1.wav").is_file() and (tmp_path / "labels.csv").is_file()
