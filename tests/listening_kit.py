"""What the `estm listen` tests share: music-like test audio, a report folder as `estm evaluate transfer
--keep-audio` writes one, folders of files, a test folder, and a server run in a thread or in a process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import write
from estm_core.transfer_outputs import AUDIO_FOLDER, kept_path

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
LEVELS_DB = {"Q1": -6.0, "Q2": -10.0, "Q3": -22.0, "Q4": -16.0}  # quadrants differ in level, as music does


def harmonic(seconds: float, rate: int, f0: float, level_db: float, seed: int = 0) -> np.ndarray:
    """A tone with harmonics up to 9 kHz (1/k amplitudes), a little noise and a swell: broadband, so that low-passing
    it is heard; stereo."""
    t = np.arange(round(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, int(9000 / f0) + 1))
    wave = wave + 0.05 * np.random.default_rng(seed).normal(size=len(t))
    wave *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t) ** 2
    wave *= 10 ** (level_db / 20) / np.abs(wave).max()
    return np.stack([wave, 0.8 * wave], axis=1).astype(np.float32)


def fake_report(folder: Path, *, excerpts: int = 2, methods=("cues", "cues --emotion"), seconds: float = 1.5,
                rate: int = 22050) -> Path:
    """A judged transfer's report folder with its kept audio: each excerpt in four quadrants (the corpus), every
    (content, target) pair of them, each method's output a changed copy of the content."""
    folder.mkdir(parents=True)
    names = [f"work{k}" for k in range(excerpts)]
    corpus = {}
    for number, name in enumerate(names):
        for q, quadrant in enumerate(QUADRANTS):
            path = folder.parent / "corpus" / f"{name}-{quadrant}.wav"
            path.parent.mkdir(exist_ok=True)
            corpus[name, quadrant] = str(write(path, harmonic(seconds, rate, 110 * (1 + number) * (1 + q / 4),
                                                              LEVELS_DB[quadrant], seed=number), rate))
    rows = []
    for number, name in enumerate(names):
        other = names[(number + 1) % len(names)]
        for source in QUADRANTS:
            for target in QUADRANTS:
                if source == target:
                    continue
                pair = {"corpus": "development", "pair": len(rows) // (3 + len(methods)), "excerpt": name,
                        "content": corpus[name, source], "reference": corpus[other, target],
                        "target": corpus[name, target], "content_quadrant": source, "target_quadrant": target}
                for system in ("copy-content", "copy-reference", *methods, "target"):
                    rows.append({**pair, "system": system, "mer": "Q1", "cue_judge": "Q1"})
                for k, method in enumerate(methods):
                    samples = harmonic(seconds, rate, 110 * (1 + number), -12.0 - 3 * k, seed=k + 7)
                    kept = kept_path(folder / AUDIO_FOLDER, method, name, source, target, pair["content"],
                                     pair["reference"])
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    write(kept, samples, rate)
    pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
    (folder / "evaluation.json").write_text(json.dumps({"methods": list(methods), "corpora": {"development": {}}}))
    return folder


def system_folders(root: Path, systems=("a", "b"), quadrants=QUADRANTS, seconds: float = 1.0,
                   rate: int = 16000) -> dict[str, Path]:
    """Folders of files, one per system, with Q1..Q4 subfolders of one song each, and the originals."""
    folders = {}
    for number, system in enumerate((*systems, "originals")):
        for q, quadrant in enumerate(quadrants):
            path = root / system / quadrant / "song.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, harmonic(seconds, rate, 150 + 50 * q, -10 - 4 * number, seed=q), rate)
        folders[system] = root / system
    return folders


# ----------------------------------------------------------------------------------------------- the server


@contextmanager
def served(test: Path):
    """A server for the test folder `test` in a thread of this process; yields its address."""
    from estm_core.listening.server import ListeningTest, address, make_server

    events: list[str] = []
    server = make_server(ListeningTest(test, on_event=events.append), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield address(server), events
    finally:
        server.shutdown()
        server.server_close()


def request(url: str, body=None, *, headers: dict | None = None, raw: bytes | None = None) -> tuple[int, object]:
    """(status, JSON or bytes) of a GET, or a POST of `body` as JSON (or of `raw` bytes)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    call = urllib.request.Request(url, data=data, headers={**sent, **(headers or {})},
                                  method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            status, content, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, content, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, json.loads(content) if kind.startswith("application/json") else content


class ServerProcess:
    """`estm listen serve TEST` in a process of its own (killable as a real server is), on a port of its own."""

    def __init__(self, test: Path, port: int = 0):
        self.test, self.port, self.process = test, port, None

    def start(self) -> str:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "estm_cli", "listen", "serve", str(self.test), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            raise RuntimeError(f"the server did not start: {line}{self.process.stderr.read()}")
        self.port = int(match[1])
        return match[0]

    def kill(self) -> None:
        """As a crash or a power cut would: no chance to tidy up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill()


def wait_until(check, seconds: float = 20.0, every: float = 0.05):
    """The first true value of `check()` within `seconds`; an AssertionError after."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting after {seconds} s for {getattr(check, '__name__', check)}")


def made_test(tmp_path: Path, estm, listeners: int) -> Path:
    """`estm listen make` on system_folders' two systems and originals: the test folder."""
    folders = system_folders(tmp_path / "music")
    result = estm("listen", "make", folders["a"], folders["b"], "--reference", folders["originals"], "-o",
                  tmp_path / "test", "--listeners", str(listeners), "-q")
    assert result.code == 0, result.err
    return tmp_path / "test"
