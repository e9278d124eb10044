"""Cue transfer speed and memory: x real time of `estm transfer CONTENT EMOTION -o OUT` (the cue method) on a
3-minute stereo 44.1 kHz song, wall time of the whole command on all cores; then the peak memory of the transfer of
a long version of the song, 6 against 60 minutes, and their ratio (bounded memory: about 1).

    .venv/bin/python benchmarks/cue_transfer.py [--file SONG] [--emotion SONG] [--minutes 6 60] [--repeat 2]

Without --file the content is a generated piece (plucked chords with onsets, in C major); without --emotion the
emotion file is a generated minute in A minor, faster, louder, brighter and an octave higher, so that every cue
moves, the mode too. With --file the first 3 minutes of SONG are the content. Every run is a process of its own, so
the times include Python's start and the imports, as the command's do; the memory is each run's ru_maxrss (the main
process, and the largest of its workers). The long inputs loop the content into a temporary FLAC; the 60-minute
run takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100
SECONDS = 180.0

MEMORY_RUN = """
import json, resource, sys
from estm_core.methods.cues.method import transfer_file
if __name__ == "__main__":
    transfer_file(sys.argv[1], sys.argv[3], reference=sys.argv[2], force=True, measure_output=False)
    print(json.dumps([resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF,
                                                                           resource.RUSAGE_CHILDREN)]))
"""


def piece(seconds: float, *, minor: bool = False, seed: int = 0) -> np.ndarray:
    """(frames, 2) float32 at RATE: a chord progression (I-vi-IV-V in C, or i-iv-v-i in A minor with the notes an
    octave higher, played 1.6 times as fast, louder and with brighter overtones), each chord plucked on every beat,
    over a bass note and a faint noise floor."""
    rng = np.random.default_rng(seed)
    beat = round(RATE * (0.5 / 1.6 if minor else 0.5))
    t = np.arange(4 * beat) / RATE  # a chord lasts four beats
    since_beat = t % (beat / RATE)
    chords = ([(69, 72, 76, 45), (74, 77, 81, 50), (76, 80, 83, 52), (69, 72, 76, 45)] if minor else
              [(60, 64, 67, 36), (57, 60, 64, 33), (53, 57, 60, 29), (55, 59, 62, 31)])
    overtones = 6 if minor else 3

    def note(midi: int) -> np.ndarray:
        hz = 440.0 * 2 ** ((midi - 69) / 12)
        return sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, overtones + 1) if hz * k < RATE / 2)

    bars = [np.exp(-5 * since_beat) * sum(note(m) for m in chord[:3]) + 0.5 * note(chord[3]) for chord in chords]
    frames = round(seconds * RATE)
    music = np.concatenate([bars[index % 4] for index in range(frames // len(t) + 1)])[:frames]
    music = music / np.abs(music).max() * (0.8 if minor else 0.25) + 0.002 * rng.standard_normal(frames)
    return np.stack([music, 0.9 * np.roll(music, 120)], axis=1).astype(np.float32)


def first_minutes(path: Path, seconds: float, destination: Path) -> Path:
    """The first `seconds` of `path` (at its own rate and channels) as a FLAC."""
    samples, rate = sf.read(path, frames=round(seconds * sf.info(path).samplerate), dtype="float32")
    sf.write(destination, samples, rate, subtype="PCM_16")
    return destination


def looped(path: Path, minutes: float, destination: Path) -> Path:
    """`path` played over and over for `minutes`, written block by block."""
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    frames = round(minutes * 60 * rate)
    with sf.SoundFile(destination, "w", rate, samples.shape[1], subtype="PCM_16") as out:
        while frames > 0:
            out.write(samples[:frames])
            frames -= len(samples)
    return destination


def estm(*arguments) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("estm")), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, check=True)


def timed(*arguments) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = estm(*arguments)
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="a song whose first 3 minutes are the content (default: generated)")
    parser.add_argument("--emotion", type=Path, help="the emotion file (default: a generated minute in A minor)")
    parser.add_argument("--minutes", type=float, nargs=2, default=(6.0, 60.0), help="the two lengths for memory")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of the command; the best is reported")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    if arguments.file:
        content = first_minutes(arguments.file, SECONDS, folder / "content.flac")
    else:
        content = folder / "content.flac"
        sf.write(content, piece(SECONDS), RATE, subtype="PCM_16")
    emotion = arguments.emotion or folder / "emotion.flac"
    if not arguments.emotion:
        sf.write(emotion, piece(60.0, minor=True, seed=1), RATE, subtype="PCM_16")
    info = sf.info(content)
    print(f"content {arguments.file or 'generated'}: {info.duration:.0f} s, {info.channels} channels at "
          f"{info.samplerate} Hz; emotion {emotion.name}: {sf.info(emotion).duration:.0f} s; "
          f"{len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.1f}")

    _, report = timed("transfer", content, emotion, "-o", folder / "out.wav", "--force", "-q", "--json")
    print("moves: " + ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                                for key, value in json.loads(report.stdout)["moves"].items()))
    for label, extra in (("estm transfer", ()), ("estm transfer --json (the output analysed too)", ("--json",))):
        best = min(timed("transfer", content, emotion, "-o", folder / "out.wav", "--force", "-q", *extra)[0]
                   for _ in range(arguments.repeat))
        print(f"{label}: {best:.2f} s (best of {arguments.repeat}) = {info.duration / best:.1f}x real time")

    peaks = []
    for minutes in arguments.minutes:
        long = looped(content, minutes, folder / f"long{minutes:g}.flac")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", MEMORY_RUN, long, emotion, folder / "long.wav"],
                              capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - started
        main_mb, worker_mb = json.loads(done.stdout.strip().splitlines()[-1])
        peaks.append(max(main_mb, worker_mb))
        print(f"{minutes:g} min: peak memory {main_mb:.0f} MB (largest worker {worker_mb:.0f} MB), "
              f"{elapsed:.0f} s = {minutes * 60 / elapsed:.1f}x real time")
        long.unlink()
    print(f"peak memory {arguments.minutes[1]:g} min / {arguments.minutes[0]:g} min: {peaks[1] / peaks[0]:.2f}")


if __name__ == "__main__":
    main()
