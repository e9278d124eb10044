"""How fast the scores corpus renders, in seconds of audio per second of wall time ("x real time"), on one core.

    .venv/bin/python benchmarks/scores.py [--count 16] [--channels 1]

Reads `--count` excerpts (parsing the works, the larger cost, timed apart), then times `render` (SoundFont synthesis,
the room and the level) over their four quadrants, then `generate` (all of it, plus writing the wavs and the tables)
into a temporary folder, whose size on disk it prints.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import one_core  # noqa: F401  (first: one core, no extra threads)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from estm_core.datasets import score_cues, score_excerpts, score_rendering, scores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--channels", type=int, default=1)
    arguments = parser.parse_args()
    soundfont = score_rendering.check_soundfont(None)

    started = time.perf_counter()
    excerpts, tried = [], 0
    for work in scores.candidates(scores.catalogue(), seed=0):
        tried += 1
        excerpt = scores.excerpt_or_reason((work, 0, score_cues.SECONDS))
        if isinstance(excerpt, score_excerpts.Excerpt):
            excerpts.append(excerpt)
            if len(excerpts) == arguments.count:
                break
    parsing = time.perf_counter() - started
    print(f"parse:    {len(excerpts)} excerpts from {tried} works in {parsing:.1f} s "
          f"({parsing / tried:.2f} s a work)")

    audio_seconds = len(excerpts) * len(score_cues.CUES) * score_cues.SECONDS
    started = time.perf_counter()
    for excerpt in excerpts:
        for quadrant, cues in score_cues.CUES.items():
            score_rendering.render(excerpt, cues, score_cues.rng_for(0, excerpt.work.name, quadrant),
                                   soundfont=soundfont, channels=arguments.channels)
    rendering = time.perf_counter() - started
    print(f"render:   {audio_seconds:.0f} s of audio in {rendering:.2f} s = {audio_seconds / rendering:.0f}x real time")

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        scores.generate(folder, count=arguments.count, channels=arguments.channels)
        generating = time.perf_counter() - started
        size = sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())
    print(f"generate: {audio_seconds:.0f} s of audio in {generating:.1f} s = {audio_seconds / generating:.0f}x real "
          f"time, parsing included; {size / 2**20:.1f} MiB on disk ({size / 2**20 / arguments.count:.2f} MiB an "
          f"excerpt)")


if __name__ == "__main__":
    main()
