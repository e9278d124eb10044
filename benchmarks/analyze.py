"""Cue analysis speed: seconds of audio analysed per second of wall time ("x real time"), on one core.

    .venv/bin/python benchmarks/analyze.py [AUDIO_FILE] [--minutes 3] [--format flac|wav|mp3]

Without a file it writes a stereo 44.1 kHz piece (chords with overtones, a bass line, drums, a little noise) of
`--minutes` into a temporary folder. It prints the first call apart (the imports load once a process), then times
`analyze` on the file: decoding, loudness on both channels, and every cue.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import one_core  # noqa: F401  (first: one core, no extra threads)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from estm_core import audio  # noqa: E402
from estm_core.cues.meter import analyze  # noqa: E402

RATE = 44100


def piece(minutes: float, seed: int = 0) -> np.ndarray:
    """(frames, 2) float32: I-vi-IV-V in C at 120 bpm, two beats a chord, with kick, snare and hi-hat."""
    rng = np.random.default_rng(seed)
    beat = RATE // 2
    frames = round(minutes * 60 * RATE)
    t = np.arange(beat * 2) / RATE
    envelope = np.exp(-t * 1.5)

    def tone(midi: float) -> np.ndarray:
        frequency = 440.0 * 2 ** ((midi - 69) / 12)
        return sum(np.sin(2 * np.pi * frequency * k * t) / k**1.5 for k in range(1, 9) if frequency * k < RATE / 2)

    chords = [(60, 64, 67, 36), (57, 60, 64, 33), (53, 57, 60, 29), (55, 59, 62, 31)]
    bars = [0.05 * envelope * sum(tone(m) for m in chord) for chord in chords]
    music = np.zeros(frames + beat * 2)
    hit = np.arange(RATE // 10) / RATE
    kick = 0.5 * np.sin(2 * np.pi * 60 * hit * (1 + 2 * np.exp(-hit * 40))) * np.exp(-hit * 30)
    for index, start in enumerate(range(0, frames, beat * 2)):
        music[start:start + beat * 2] += bars[index % len(bars)]
        for offset in (0, beat):
            music[start + offset:start + offset + len(kick)] += kick if offset == 0 else \
                0.2 * rng.standard_normal(len(hit)) * np.exp(-hit * 40)  # snare on the second beat
            music[start + offset + beat // 2:start + offset + beat // 2 + 2000] += \
                0.05 * rng.standard_normal(2000) * np.exp(-np.arange(2000) / 200)  # hi-hat off the beat
    music = music[:frames] + 0.002 * rng.standard_normal(frames)
    stereo = np.stack([music, np.roll(music, 200) * 0.9], axis=1)
    return (0.8 * stereo / np.abs(stereo).max()).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_file", nargs="?", help="a file to analyse (default: a generated piece)")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the generated piece")
    parser.add_argument("--format", default="flac", choices=("flac", "wav", "mp3"), help="of the generated piece")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    path = Path(arguments.audio_file) if arguments.audio_file else folder / f"piece.{arguments.format}"
    if not arguments.audio_file:
        audio.save(path, piece(arguments.minutes), RATE)
    header = audio.probe(path)
    print(f"{path.name}: {header.duration / 60:.1f} min, {header.channels} channels at {header.sample_rate} Hz")

    started = time.perf_counter()
    analyze(audio.load(path, duration=5.0)[0], header.sample_rate)
    print(f"first call (imports, compiled code): {time.perf_counter() - started:.1f} s")

    times = []
    for _ in range(arguments.repeat):
        started = time.perf_counter()
        cues = analyze(path)
        times.append(time.perf_counter() - started)
    best = min(times)
    print(f"analyze: {best:.2f} s (best of {arguments.repeat}) = {header.duration / best:.0f}x real time on one core")
    print("  " + ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in cues.to_dict().items()))


if __name__ == "__main__":
    main()
