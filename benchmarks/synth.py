"""How fast SynthEmo renders, in seconds of audio per second of wall time ("x real time"), on one core.

    .venv/bin/python benchmarks/synth.py [--contents 32] [--seconds 10.08]

Times `render` over every content and quadrant, then `generate` (rendering plus writing the 16-bit wavs and the
tables) into a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import one_core  # noqa: F401  (first: one core, no extra threads)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from estm_core.datasets import synth  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contents", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=synth.SECONDS)
    arguments = parser.parse_args()
    audio_seconds = arguments.contents * len(synth.CUES) * arguments.seconds

    synth.render(0, "Q1", seconds=1.0)  # warm up imports and caches
    started = time.perf_counter()
    for content in range(arguments.contents):
        for quadrant in synth.CUES:
            synth.render(content, quadrant, seconds=arguments.seconds)
    rendering = time.perf_counter() - started
    print(f"render:   {audio_seconds:.0f} s of audio in {rendering:.2f} s = {audio_seconds / rendering:.0f}x real time")

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        synth.generate(folder, contents=arguments.contents, seconds=arguments.seconds)
        generating = time.perf_counter() - started
    print(f"generate: {audio_seconds:.0f} s of audio in {generating:.2f} s "
          f"= {audio_seconds / generating:.0f}x real time")


if __name__ == "__main__":
    main()
