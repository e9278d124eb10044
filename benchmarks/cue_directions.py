"""Does the cue method move each cue the way it plans, on real music, and how large are its edits? For every audio
file of a folder, its first `--seconds` are moved toward the emotion of the next file (or with `--quadrants`, toward
each quadrant, as `estm transfer --emotion Q*`), within `--range`; the cue meter then measures the output. Prints,
per cue, on how many of the transfers that moved it the measured change has the move's sign (where the meter
reads the cue: transfer_measures.CUE_CHANGES), and the size of the edits: the largest change of the pitch
centroid and of the spectral centroid, and how often the loudness went against the asked arousal.

    .venv/bin/python benchmarks/cue_directions.py /usr/share/games/wesnoth/1.16/data/core/music [--seconds 60]
        [--quadrants] [--range natural|wide] [--csv runs/directions.csv]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Which field of the moves moves each cue (a cue the plan leaves alone is not counted).
MOVED_BY = {"tempo": "tempo_ratio", "loudness": "gain_db", "dynamics": "dynamics_ratio",
            "brightness": "tilt_db_per_octave", "articulation": "articulation", "register": "semitones"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quadrants", action="store_true")
    parser.add_argument("--range", dest="range_", default="natural")
    parser.add_argument("--csv", type=Path)
    arguments = parser.parse_args()

    import pandas as pd

    from estm_core.finding import audio_files
    from estm_core.labels import QUADRANTS
    from estm_core.methods.cues.plan import emotion_plan

    started = time.perf_counter()
    clips, measured = _measurable(audio_files(arguments.folder, recursive=False), arguments.seconds)
    rows = []
    for number, ((path, samples, rate), content) in enumerate(zip(clips, measured)):
        following = (number + 1) % len(clips)
        plans = ({quadrant: emotion_plan(content, quadrant=quadrant, range_=arguments.range_)
                  for quadrant in QUADRANTS.labels} if arguments.quadrants else
                 {Path(clips[following][0]).name: emotion_plan(content, reference=measured[following],
                                                                   range_=arguments.range_)})
        rows += [_row(Path(path).name, target_name, plan, content, samples, rate)
                 for target_name, plan in plans.items()]
        print(f"{number + 1}/{len(clips)} {Path(path).name}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    if arguments.csv:
        table.to_csv(arguments.csv, index=False)
    seconds = sum(len(samples) / rate for _, samples, rate in clips)
    print(f"{len(rows)} transfers of {len(clips)} files ({seconds / 60:.0f} min of audio) in "
          f"{time.perf_counter() - started:.0f} s")
    print("cue           moved  in the asked direction")
    for cue in [*MOVED_BY, "mode"]:
        if cue in table.columns and table[cue].notna().any():
            print(f"{cue:12s} {int(table[cue].notna().sum()):6d}  {table[cue].mean():.2f}")
    against = (table["loudness_change"] * table["arousal_step"] < -0.5).sum()  # half a LU is the meter's noise
    print(f"pitch centroid change {table['pitch_change'].min():+.1f} to {table['pitch_change'].max():+.1f} semitones;"
          f" spectral centroid x{table['centroid_ratio'].min():.2f} to x{table['centroid_ratio'].max():.2f};"
          f" loudness against the asked arousal in {against} of {len(table)}")


def _measurable(files: list, seconds: float) -> tuple[list, list]:
    """The first `seconds` of each file as (path, samples, rate), and their cues: those long and loud enough."""
    from estm_core import audio
    from estm_core.cues.meter import analyze

    clips, measured = [], []
    for path in files:
        samples, rate = audio.load(path, duration=seconds)
        cues = analyze(samples, rate) if len(samples) >= 3 * rate else None  # under 3 s: no loudness range
        if cues is None or not math.isfinite(cues.loudness_lufs):  # too short, or all below the -70 LUFS gate
            print(f"skipped {Path(path).name}: too short or too quiet to measure", file=sys.stderr)
            continue
        clips.append((path, samples, rate))
        measured.append(cues)
    return clips, measured


def _row(name: str, target_name: str, plan, content, samples, rate: int) -> dict:
    """One transfer's row: per cue the plan moved, whether the meter reads it moved the plan's way; the edits' size."""
    from estm_core.cues.meter import analyze
    from estm_core.methods.cues.method import apply
    from estm_core.methods.cues.plan import Moves
    from estm_core.transfer_measures import CUE_CHANGES, cue_changes

    moves = plan.moves
    after = analyze(apply(samples, rate, moves), rate)
    moved = cue_changes(content, after, asked=after)
    row = {"file": name, "target": target_name, "arousal_step": plan.steps["arousal"],
           "loudness_change": after.loudness_lufs - content.loudness_lufs,
           "pitch_change": after.pitch_centroid_midi - content.pitch_centroid_midi,
           "centroid_ratio": after.centroid_hz / content.centroid_hz}
    for cue, _, threshold in CUE_CHANGES:
        move = getattr(moves, MOVED_BY[cue]) - getattr(Moves(), MOVED_BY[cue])
        if move and not math.isnan(moved[cue]):
            row[cue] = float(math.copysign(1, move) == math.copysign(1, moved[cue]))
    if moves.mode is not None:
        row["mode"] = float(after.mode == moves.mode)
    return row


if __name__ == "__main__":
    main()
