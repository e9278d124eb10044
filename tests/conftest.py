"""Shared test helpers: synthetic audio written to disk, broken files, an isolated model store, the CLI in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def tone(seconds: float, rate: int, frequency: float = 440.0, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A sine, (frames,) or (frames, channels) with channel k at amplitude / (k + 1) so channels differ."""
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * frequency * t)
    if channels == 1:
        return wave.astype(np.float32)
    return np.stack([wave / (k + 1) for k in range(channels)], axis=1).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int, **kwargs) -> Path:
    sf.write(path, samples, rate, **kwargs)
    return path


def truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    """One file of each kind `estm_core.audio` must reject, by kind."""
    folder = tmp_path / "bad"
    folder.mkdir()
    empty = folder / "empty.wav"
    empty.touch()
    text = folder / "notes.wav"
    text.write_text("these are my notes, not audio\n" * 20)
    truncated_mp3 = truncate(write(folder / "cut.mp3", tone(4.0, 22050), 22050), 0.5)
    truncated_wav = truncate(write(folder / "cut.wav", tone(4.0, 22050), 22050), 0.5)
    broken_mp3 = truncate(write(folder / "stub.mp3", tone(4.0, 22050), 22050), 0.02)
    nan = tone(1.0, 8000)
    nan[100:110] = np.nan
    nonfinite = write(folder / "nan.wav", nan, 8000, subtype="FLOAT")
    return {
        "missing": folder / "absent.wav",
        "empty": empty,
        "not_audio": text,
        "truncated": truncated_mp3,
        "truncated_wav": truncated_wav,
        "corrupt": broken_mp3,
        "nonfinite": nonfinite,
    }


@pytest.fixture
def store_home(tmp_path, monkeypatch) -> Path:
    """An empty model store of the test's own."""
    home = tmp_path / "estm-home"
    monkeypatch.setenv("ESTM_HOME", str(home))
    return home


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def estm(capsys, monkeypatch):
    """Run the `estm` command in-process: estm("inspect", "x.wav") -> CliResult(code, stdout, stderr)."""
    from estm_cli.app import main

    def run(*args: str, stdin: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["estm", *map(str, args)])
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def fast_demo(tmp_path_factory) -> tuple[Path, Path]:
    """`estm demo --fast`, run once per session: (its output folder, its store)."""
    from estm_core.demo import PLANS, Demo

    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESTM_HOME", str(root / "home"))
        Demo(root / "out", PLANS["fast"]).run()
    return root / "out", root / "home"


@pytest.fixture
def demo_store(fast_demo, monkeypatch) -> Path:
    """The fast demo's output folder, with its store as this test's store."""
    monkeypatch.setenv("ESTM_HOME", str(fast_demo[1]))
    return fast_demo[0]
