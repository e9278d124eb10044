"""How far can a range's edits reach? The best any editor confined to `--range` could score with the cue judge, on a
split's held-out files, each asked for every other quadrant: the judge's upper bound for the cue method there.

The cue judge is fitted on the split's train part, as `estm evaluate transfer` fits it. Each content's cues are then
moved in the judge's feature space by every combination of the range's edits at their limits (tempo, gain, tilt,
articulation, transposition, mode), and the combination the judge likes best for the asked quadrant is kept. Tempo,
gain, transposition and mode are taken to move their cues exactly; what the tilt EQ and the articulation edit do to the
meter is measured by rendering each at its limits on each file. No edit can do better than this search (up to the meter
reading the modelled cues as modelled), so an accuracy goal above the printed reach is out of that range's reach.

    .venv/bin/python benchmarks/range_reach.py dev-split.csv [--also held-out-split.csv] [--count 45] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def measured_edits(path: str, tilt_limit: float, articulation_limit: float):
    """The file's cues, and its cues after the tilt EQ and the articulation edit at each of their limits."""
    from estm_core import audio
    from estm_core.cues.meter import analyze
    from estm_core.methods.cues.articulation import articulation
    from estm_core.methods.cues.tilt import tilt

    samples, rate = audio.load(path, mono=False)
    edits = {("tilt", sign): tilt(samples, rate, sign * tilt_limit) for sign in (-1, 1)}
    edits |= {("articulation", sign): articulation(samples, rate, sign * articulation_limit) for sign in (-1, 1)}
    return analyze(samples, rate), {key: analyze(edited, rate) for key, edited in edits.items()}


def best_heard(judge, content, edited: dict, target: str, limits) -> str:
    """What the judge hears in the edit combination that sounds most like `target` to it."""
    low, high = limits.tempo_ratio
    semitones = {0, -limits.semitones, limits.semitones}
    candidates = []
    for ratio, gain, tilt, articulation, shift, mode in itertools.product(
            (low, 1.0, high), (-limits.gain_db, 0.0, limits.gain_db), (-1, 0, 1), (-1, 0, 1), semitones,
            ("major", "minor")):
        cues = content
        for cue, sign in (("tilt", tilt), ("articulation", articulation)):
            if sign:  # the measured change of every cue this edit moved
                after = edited[(cue, sign)]
                cues = replace(cues, tilt_db_per_octave=cues.tilt_db_per_octave + after.tilt_db_per_octave
                               - content.tilt_db_per_octave,
                               centroid_hz=cues.centroid_hz * after.centroid_hz / content.centroid_hz,
                               loudness_lufs=cues.loudness_lufs + after.loudness_lufs - content.loudness_lufs,
                               percussive_ratio=after.percussive_ratio if cue == "articulation" else
                               cues.percussive_ratio,
                               onset_decay=after.onset_decay if cue == "articulation" else cues.onset_decay)
        candidates.append(replace(
            cues, onset_rate=cues.onset_rate * ratio, tempo_bpm=cues.tempo_bpm * ratio,
            loudness_lufs=float(np.clip(cues.loudness_lufs + gain, -45.0, -9.0)),
            centroid_hz=cues.centroid_hz * 2 ** (shift / 12), pitch_centroid_midi=cues.pitch_centroid_midi + shift,
            mode=mode))
    liking = judge.probabilities(candidates)[:, judge.labels.index(target)]
    return judge.predict([candidates[int(np.argmax(liking))]])[0]


def reach(judge, files, limits, jobs: int) -> dict[str, float]:
    from estm_core.labels import QUADRANTS

    arousal = {"Q1": 1, "Q2": 1, "Q3": 0, "Q4": 0}
    valence = {"Q1": 1, "Q2": 0, "Q3": 0, "Q4": 1}
    with ProcessPoolExecutor(jobs) as pool:
        measured = list(pool.map(measured_edits, files["path"], itertools.repeat(limits.tilt_db_per_octave),
                                 itertools.repeat(limits.articulation)))
    hits = {"quadrant": [], "arousal": [], "valence": []}
    for (content, edited), label in zip(measured, files["label"]):
        for target in QUADRANTS.labels:
            if target == label:
                continue
            heard = best_heard(judge, content, edited, target, limits)
            hits["quadrant"].append(heard == target)
            hits["arousal"].append(arousal[heard] == arousal[target])
            hits["valence"].append(valence[heard] == valence[target])
    ceiling = np.mean(np.array(judge.predict([cues for cues, _ in measured])) == files["label"].to_numpy())
    return {"pairs": len(hits["quadrant"]), "ceiling": ceiling} | {cue: float(np.mean(h)) for cue, h in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path, help="the development split: its train part fits the judge")
    parser.add_argument("--also", type=Path, help="a held-out split, whose test part is reached too")
    parser.add_argument("--count", type=int, help="at most this many files of each quadrant")
    parser.add_argument("--jobs", type=int, default=2)
    arguments = parser.parse_args()

    import pandas as pd

    from estm_core.cues.judge import CueJudge
    from estm_core.cues.meter import analyze_files
    from estm_core.methods.cues.plan import RANGES
    from estm_core.labels import QUADRANTS

    development = pd.read_csv(arguments.split)
    training = development[(development["part"] == "train") & development["label"].isin(QUADRANTS.labels)]
    judge = CueJudge.fit([cues for _, cues in analyze_files(list(training["path"]), jobs=arguments.jobs)],
                         list(training["label"]))
    corpora = {"development": development[development["part"] != "train"]}
    if arguments.also:
        held_out = pd.read_csv(arguments.also)
        corpora["held-out"] = held_out[held_out["part"] == "test"]
    print("corpus        range     pairs  quadrant  arousal  valence  (judge on the unedited files)")
    for corpus, files in corpora.items():
        files = files[files["label"].isin(QUADRANTS.labels)]
        if arguments.count:
            files = files.groupby("label").head(arguments.count)
        for name, limits in RANGES.items():
            figures = reach(judge, files, limits, arguments.jobs)
            print(f"{corpus:13} {name:8} {figures['pairs']:6} {figures['quadrant']:9.2f} {figures['arousal']:8.2f} "
                  f"{figures['valence']:8.2f}  ({figures['ceiling']:.2f})", flush=True)


if __name__ == "__main__":
    main()
