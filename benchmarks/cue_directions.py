"""Does the cue method move each cue the way it asks, on real music? For every audio file of a folder, its first
`--seconds` are moved toward the cues of the next file (or with `--quadrants`, toward each quadrant's profile, as
`estm transfer --emotion Q*`); the cue meter then measures the output. Prints, per cue, on how many of the transfers
that moved it the measured change has the asked sign (counted as `estm evaluate transfer` counts them: where the
content and the target differ by at least the cue's threshold, transfer_evaluation.CUE_CHANGES).

    .venv/bin/python benchmarks/cue_directions.py /usr/share/games/wesnoth/1.16/data/core/music [--seconds 60]
        [--quadrants] [--csv runs/directions.csv]
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
    parser.add_argument("--csv", type=Path)
    arguments = parser.parse_args()

    import pandas as pd

    from estm_core import audio
    from estm_core.cues import transfer
    from estm_core.cues.analysis import analyze
    from estm_core.finding import audio_files
    from estm_core.transfer_evaluation import CUE_CHANGES, cue_changes

    files = audio_files(arguments.folder, recursive=False)
    started = time.perf_counter()
    clips, measured = [], []
    for path in files:
        samples, rate = audio.load(path, duration=arguments.seconds)
        cues = analyze(samples, rate) if len(samples) >= 3 * rate else None  # under 3 s: no loudness range
        if cues is None or not math.isfinite(cues.loudness_lufs):  # too short, or all below the -70 LUFS gate
            print(f"skipped {Path(path).name}: too short or too quiet to measure", file=sys.stderr)
            continue
        clips.append((path, samples, rate))
        measured.append(cues)
    rows = []
    for number, ((path, samples, rate), content) in enumerate(zip(clips, measured)):
        reference = measured[(number + 1) % len(clips)]
        plans = ({quadrant: transfer.quadrant_plan(content, quadrant) for quadrant in transfer.QUADRANT_PROFILES}
                 if arguments.quadrants else
                 {Path(clips[(number + 1) % len(clips)][0]).name: (reference, transfer.plan(content, reference))})
        for target_name, (target, moves) in plans.items():
            output = transfer.apply(samples, rate, moves)
            after = analyze(output, rate)
            # as `estm evaluate transfer` counts them: a cue asked to move by at least its threshold, and moved
            asked, moved = cue_changes(content, target), cue_changes(content, after, asked=target)
            row = {"file": Path(path).name, "target": target_name}
            for cue, _, threshold in CUE_CHANGES:
                if getattr(moves, MOVED_BY[cue]) != getattr(transfer.Moves(), MOVED_BY[cue]) and \
                        abs(asked[cue]) >= threshold and not math.isnan(moved[cue]):
                    row[cue] = float(math.copysign(1, asked[cue]) == math.copysign(1, moved[cue]))
            if moves.mode is not None:
                row["mode"] = float(after.mode == moves.mode)
            rows.append(row)
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


if __name__ == "__main__":
    main()
