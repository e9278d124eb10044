"""How far can a range's edits reach? The best any editor confined to `--range` could score with the cue judge, on a
split's held-out files, each asked for every other quadrant: the judge's upper bound for the cue method there.

The cue judge is fitted on the split's train part, as `estm evaluate transfer` fits it. Each content's cues are then
moved in the judge's feature space by every combination of the edits the method's emotion plan makes, at the range's
limits (tempo, gain, tilt, articulation, transposition, mode), and the combination the judge likes best for the asked
quadrant is kept. Tempo, gain, transposition and mode are taken to move their cues exactly; what the tilt EQ and the
articulation edit do to the meter is measured by rendering each at its limits on each file. No edit can do better
than this search (up to the meter reading the modelled cues as modelled), so an accuracy goal above the printed reach
is out of that range's reach.

With `--mer NAME` the same is asked of a mer model, a judge the method shares nothing with: every combination of the
range's edits at their limits, the dynamics edit too, is rendered by the method itself (method.apply) and the one the
model likes best is kept. Gain is left out: the mer model z-scores each clip's log-mel, so a whole-clip gain is
nothing to it.

    .venv/bin/python benchmarks/range_reach.py dev-split.csv [--also held-out-split.csv] [--count 45] [--jobs 2]
        [--mer devjudge [--only-mer]] [--held-out-only] [--range natural]
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


AROUSAL = {"Q1": 1, "Q2": 1, "Q3": 0, "Q4": 0}
VALENCE = {"Q1": 1, "Q2": 0, "Q3": 0, "Q4": 1}


def figures(best: list[dict[str, str]], labels, heard_unedited: list[str]) -> dict[str, float]:
    """Quadrant, arousal and valence hits of the best edits (per file: what is heard for each other quadrant asked),
    and the judge's accuracy on the unedited files."""
    hits = {"quadrant": [], "arousal": [], "valence": []}
    for heard_for, label in zip(best, labels):
        for target, heard in heard_for.items():
            if target != label:
                hits["quadrant"].append(heard == target)
                hits["arousal"].append(AROUSAL[heard] == AROUSAL[target])
                hits["valence"].append(VALENCE[heard] == VALENCE[target])
    ceiling = float(np.mean(np.array(heard_unedited) == np.asarray(labels)))
    return {"pairs": len(hits["quadrant"]), "ceiling": ceiling} | {cue: float(np.mean(h)) for cue, h in hits.items()}


def reach(judge, files, limits, jobs: int) -> dict[str, float]:
    from estm_core.labels import QUADRANTS

    with ProcessPoolExecutor(jobs) as pool:
        measured = list(pool.map(measured_edits, files["path"], itertools.repeat(limits.tilt_db_per_octave),
                                 itertools.repeat(limits.articulation)))
    best = [{target: best_heard(judge, content, edited, target, limits) for target in QUADRANTS.labels}
            for content, edited in measured]
    return figures(best, files["label"], judge.predict([cues for cues, _ in measured]))


def mer_probabilities(classifier, samples: np.ndarray, rate: int) -> np.ndarray:
    """The mer model's clip probabilities, as `estm evaluate transfer` hears an output: mono at its rate, repeated to
    a whole segment if shorter, the mean over its segments."""
    import torch

    from estm_core import audio, windowing
    from estm_core.classify import segment_probabilities
    from estm_core.transfer_evaluation import at_least

    mono = audio.resample(audio.to_mono(samples), rate, classifier.sample_rate)
    windows, _ = windowing.segment(at_least(mono, classifier.segment_length), classifier.segment_length)
    with torch.no_grad():
        return segment_probabilities(classifier, windows.astype(np.float32)).mean(dim=0).numpy()


def mer_best(name: str, path: str, limits) -> tuple[str, dict[str, str]]:
    """What the mer model `name` hears in a file, and for each quadrant what it hears in the range's edit
    combination it likes best for that quadrant."""
    from estm_core import audio, store
    from estm_core.cues.meter import analyze
    from estm_core.keys import PITCH_NAMES
    from estm_core.methods.cues.method import apply
    from estm_core.methods.cues.plan import Moves

    classifier = store.load_model(name, "mer")
    samples, rate = audio.load(path, mono=False)
    cues = analyze(samples, rate)
    key = (PITCH_NAMES.index(cues.tonic), cues.mode) if cues.mode else None
    other_mode = {"major": "minor", "minor": "major"}.get(cues.mode)
    shifts = sorted({0, -limits.semitones, limits.semitones})
    liked = []
    for ratio, shift, mode, dynamics, tilt, articulation in itertools.product(
            (limits.tempo_ratio[0], 1.0, limits.tempo_ratio[1]), shifts, {None, other_mode},
            (limits.dynamics_ratio[0], 1.0, limits.dynamics_ratio[1]), (-1, 0, 1), (-1, 0, 1)):
        moves = Moves(tempo_ratio=ratio, semitones=shift, dynamics_ratio=dynamics,
                      tilt_db_per_octave=tilt * limits.tilt_db_per_octave,
                      articulation=articulation * limits.articulation, key=key if mode else None, mode=mode)
        liked.append(mer_probabilities(classifier, apply(samples, rate, moves), rate))
    liked = np.array(liked)
    labels = classifier.info.labels
    heard = labels[int(np.argmax(mer_probabilities(classifier, samples, rate)))]
    return heard, {target: labels[int(np.argmax(liked[int(np.argmax(liked[:, index]))]))]
                   for index, target in enumerate(labels)}


def mer_reach(name: str, files, limits, jobs: int) -> dict[str, float]:
    with ProcessPoolExecutor(jobs) as pool:
        heard, best = zip(*pool.map(mer_best, itertools.repeat(name), files["path"], itertools.repeat(limits)))
    return figures(list(best), files["label"], list(heard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path, help="the development split: its train part fits the judge")
    parser.add_argument("--also", type=Path, help="a held-out split, whose test part is reached too")
    parser.add_argument("--count", type=int, help="at most this many files of each quadrant")
    parser.add_argument("--held-out-only", action="store_true", help="reach --also's files only")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--range", action="append", choices=("natural", "wide"), help="only this range (repeatable)")
    parser.add_argument("--mer", help="also this mer model's reach, by rendering (0.15 s per edit combination)")
    parser.add_argument("--only-mer", action="store_true", help="the mer model's reach alone")
    arguments = parser.parse_args()

    import pandas as pd

    from estm_core.cues.judge import CueJudge
    from estm_core.cues.meter import analyze_files
    from estm_core.methods.cues.plan import RANGES
    from estm_core.labels import QUADRANTS

    development = pd.read_csv(arguments.split)
    judges = {}
    if not arguments.only_mer:
        training = development[(development["part"] == "train") & development["label"].isin(QUADRANTS.labels)]
        judge = CueJudge.fit([cues for _, cues in analyze_files(list(training["path"]), jobs=arguments.jobs)],
                             list(training["label"]))
        judges["cue judge"] = lambda files, limits: reach(judge, files, limits, arguments.jobs)
    if arguments.mer:
        judges[arguments.mer] = lambda files, limits: mer_reach(arguments.mer, files, limits, arguments.jobs)
    corpora = {} if arguments.held_out_only else {"development": development[development["part"] != "train"]}
    if arguments.also:
        held_out = pd.read_csv(arguments.also)
        corpora["held-out"] = held_out[held_out["part"] == "test"]
    print("judge       corpus        range     pairs  quadrant  arousal  valence  (judge on the unedited files)")
    for judge_name, judge_reach in judges.items():
        for corpus, files in corpora.items():
            files = files[files["label"].isin(QUADRANTS.labels)]
            if arguments.count:
                files = files.groupby("label").head(arguments.count)
            for name in arguments.range or RANGES:
                limits = RANGES[name]
                reached = judge_reach(files, limits)
                print(f"{judge_name:11} {corpus:13} {name:8} {reached['pairs']:6} {reached['quadrant']:9.2f} "
                      f"{reached['arousal']:8.2f} {reached['valence']:8.2f}  ({reached['ceiling']:.2f})", flush=True)


if __name__ == "__main__":
    main()
