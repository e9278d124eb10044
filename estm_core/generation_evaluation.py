"""Is the asked emotion (or any label) heard in generated music? (`estm evaluate wavenet --judge`, the demo's table)

Each WaveNet generates `per_label` clips for every label of its training audio (the quadrants, on an emotion
corpus): asked by its label where it has those labels, by cue curves where it takes them (a sketch of the quadrant,
sketch.quadrant_curves, seeded per clip), and not asked at all where it has neither (the floor: what the judges hear
in music that was never asked for anything). Every clip is judged by judges that had no part in making it: a
classifier (`judge`: a mer model for quadrants) and the cue judge (cues/judge.py, logistic regression on the cue
meter, fitted here on the training audio as the WaveNets learn it: 16 kHz mu-law). For quadrants, also the arousal and
valence each judge hears. Beside the judges, the judge-free check: how far each clip's onsets per second, level and
register (cues/curves.summary) are from those of the curves asked (for every model the same sketches, so that the
models without curves show where chance lands). The ceiling, in the same run: the judges on the training audio itself
(its held-out files where there are any), cut into clips as long as the generated ones, since the cue meter reads
tempo and mode less surely in a shorter stretch.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import audio, store
from .cues.curves import SAMPLE_RATE, measure, summary
from .cues.meter import MIN_SECONDS, Cues, analyze
from .errors import EstmError
from .labels import QUADRANTS
from .transfer_evaluation import HIGH_AROUSAL, POSITIVE_VALENCE, at_least, judge_frames, share_of
from .workers import in_order

CEILING = "training audio"
TEMPO_MATCH = 0.15  # a clip's onsets per second within this fraction of the asked curves'
LEVEL_MATCH_DB = 2.0  # its level within this of theirs
FIT_FILES = 32  # training files per label the cue judge learns from (at most)


def evaluate_generation(models: list[str], *, judge: str | None = None, per_label: int = 32, seconds: float = 4.0,
                        temperature: float = 0.9, seed: int = 0, device="cpu", jobs: int = 1,
                        on_progress=None) -> tuple[dict, pd.DataFrame]:
    """(summary, one row per clip) for the WaveNets `models` (store names), all trained on the same labelled data,
    judged by the classifier `judge` (None: by the cue judge only) and the cue judge."""
    from .cues.judge import CueJudge
    from .sketch import quadrant_curves

    if seconds < MIN_SECONDS:
        raise EstmError(f"judged clips must be at least {MIN_SECONDS:g} s long (the cue meter's shortest)")
    wavenets = [store.load_model(store.find_model("wavenet", name), "wavenet", device) for name in models]
    cache = _training_cache(wavenets)
    labels = sorted(set(cache.index["label"]) - {""})
    training = _files(cache.index[cache.index["part"] == "train"], labels, FIT_FILES)
    held_out = cache.index[cache.index["part"] == "validation"]
    ceiling = _clips(held_out if not held_out.empty else cache.index, labels, per_label,
                     round(seconds * SAMPLE_RATE))
    spans = [(cache, int(start), int(length)) for start, length in zip(training["start"], training["length"])]
    cue_judge = CueJudge.fit(list(in_order(_cues_of, spans, jobs)), list(training["label"]))
    ears = _Ears(cue_judge, None if judge is None else store.load_model(store.resolve(judge), device=device), labels)
    rows = [{"system": CEILING, "asked": label, **ears.judge(cache.audio(start, length))}
            for label, start, length in zip(ceiling["label"], ceiling["start"], ceiling["length"])]
    asked = [label for label in labels for _ in range(per_label)]
    sketches = None
    if labels == list(QUADRANTS.labels):
        middle = _middle(wavenets, cache)
        sketches = [quadrant_curves(quadrant, middle, seconds, seed + number) for number, quadrant in enumerate(asked)]
    for wavenet in wavenets:
        rows += _judged_clips(wavenet, asked, sketches, ears, seconds=seconds, temperature=temperature, seed=seed,
                              on_progress=on_progress)
    table = pd.DataFrame(rows)
    return {"models": [w.name for w in wavenets], "judge": ears.classifier_name, "cue_judge": (
        f"logistic regression on the cues of {len(training)} training files as the WaveNets learn them (16 kHz "
        "mu-law)"), "labels": labels, "per_label": per_label, "seconds": seconds, "chance": 1 / len(labels),
        "systems": summarise(table, quadrants=sketches is not None)}, table


def _training_cache(wavenets):
    from .datasets.mulaw import built_cache, cache_folder

    data = {wavenet.info.training.data for wavenet in wavenets}
    if len(data) != 1 or None in data:
        raise EstmError("the wavenets compared must be trained on the same data (their files say "
                        f"{', '.join(sorted(map(str, data)))})")
    cache = built_cache(cache_folder(next(iter(data))))
    if cache is None:
        raise EstmError(f"{next(iter(data))}: its training cache is gone from the store; train a wavenet on it again")
    if len(set(cache.index["label"]) - {""}) < 2:
        raise EstmError("judging asks for the labels of the training audio, and it has fewer than two")
    return cache


def _files(index: pd.DataFrame, labels: list[str], per_label: int) -> pd.DataFrame:
    """Up to `per_label` files of each label, in the index's order."""
    return index[index["label"].isin(labels)].groupby("label", sort=True).head(per_label)


def _clips(index: pd.DataFrame, labels: list[str], per_label: int, frames: int) -> pd.DataFrame:
    """Up to `per_label` clips of `frames` samples of each label: consecutive clips of every file (the whole file where
    it is shorter), the first of each file before the second of any."""
    files = index[index["label"].isin(labels)]
    clips = pd.DataFrame([{"label": label, "start": start + number * frames, "length": min(frames, length),
                           "number": number}
                          for label, start, length in zip(files["label"], files["start"], files["length"])
                          for number in range(max(1, length // frames))])
    return clips.sort_values("number", kind="stable").groupby("label", sort=True).head(per_label).sort_index()


def _cues_of(span) -> Cues:
    cache, start, length = span
    return analyze(cache.audio(start, length), SAMPLE_RATE)


def _middle(wavenets, cache) -> dict:
    """The training audio's median cues, which the sketches move from: a model's on curves, else measured."""
    from .datasets.mulaw import build_curves, spans
    from .training.wavenet import training_middle

    for wavenet in wavenets:
        if wavenet.info.training.middle:
            return wavenet.info.training.middle
    build_curves(cache)
    return training_middle(cache, spans(cache.index, "train", wavenets[0].info.training.holdout or "file"))


def _judged_clips(wavenet, asked: list[str], sketches: list[np.ndarray] | None, ears, *, seconds: float,
                  temperature: float, seed: int, on_progress=None) -> list[dict]:
    """Clips for each asked label, as the model can be asked (by label, by curves, or not at all), judged."""
    from .generate import generate, takes_curves

    info = wavenet.info
    missing = set(asked) - set(info.labels)
    if info.labels and missing:
        raise EstmError(f"{wavenet.name} does not know {', '.join(sorted(missing))}, which its training audio has")
    if takes_curves(info) and sketches is None:
        raise EstmError(f"{wavenet.name} is asked by cue curves, drawn for quadrants: its training audio has other "
                        "labels")
    curves = sketches if takes_curves(info) else None
    clips = generate(wavenet, asked if info.labels else [None] * len(asked), seconds=seconds,
                     temperature=temperature, seed=seed, curves=curves, on_progress=on_progress)
    asked_by = " and ".join(way for way, given in (("label", info.labels), ("curves", curves)) if given) or "nothing"
    rows = []
    for number, (label, clip) in enumerate(zip(asked, clips)):
        row = {"system": wavenet.name, "asked_by": asked_by, "clip": number, "asked": label, **ears.judge(clip)}
        if sketches is not None:
            got, want = summary(measure(clip)), summary(sketches[number])
            row.update(tempo_error=got["onset_rate"] / want["onset_rate"] - 1 if want["onset_rate"] > 0 else math.nan,
                       level_error_db=got["level_db"] - want["level_db"],
                       register_error=got["register_midi"] - want["register_midi"])
        rows.append(row)
    return rows


def summarise(table: pd.DataFrame, *, quadrants: bool) -> dict:
    """Per system, overall and per asked label: each judge's accuracy (and for quadrants its arousal and valence hit
    rates); for generated clips asked for quadrants, the share within TEMPO_MATCH and LEVEL_MATCH_DB of the asked
    curves and the median errors."""
    figures = {}
    for system, rows in table.groupby("system", sort=False):
        asked_by = rows["asked_by"].dropna() if "asked_by" in rows else []
        figures[system] = {"asked_by": asked_by.iloc[0] if len(asked_by) else None,  # none for the training audio
                           "overall": _figures(rows, quadrants),
                           **{label: _figures(rows[rows["asked"] == label], quadrants)
                              for label in sorted(set(rows["asked"]))}}
    return figures


def _figures(rows: pd.DataFrame, quadrants: bool) -> dict:
    figures = {"clips": len(rows)}
    for judge in ("cue_judge", "judge"):
        heard = rows[judge]
        if heard.isna().all():
            continue
        figures[judge] = {"accuracy": share_of(heard == rows["asked"])}
        if quadrants:
            figures[judge].update(
                arousal=share_of(heard.isin(HIGH_AROUSAL) == rows["asked"].isin(HIGH_AROUSAL)),
                valence=share_of(heard.isin(POSITIVE_VALENCE) == rows["asked"].isin(POSITIVE_VALENCE)))
    if "tempo_error" in rows and rows["tempo_error"].notna().any():
        figures["tempo_within"] = share_of(rows["tempo_error"].abs() <= TEMPO_MATCH)
        figures["level_within"] = share_of(rows["level_error_db"].abs() <= LEVEL_MATCH_DB)
        figures["median_abs_error"] = {"tempo": float(rows["tempo_error"].abs().median()),
                                       "level_db": float(rows["level_error_db"].abs().median()),
                                       "register": float(rows["register_error"].abs().median())}
    return figures


class _Ears:
    """The judges: the cue judge, and a classifier whose labels include those asked (or none)."""

    def __init__(self, cue_judge, classifier, labels: list[str]):
        from .classify import TASKS

        if classifier is not None:
            if classifier.family not in TASKS:
                raise EstmError(f"{classifier.name}: a {classifier.family} model, not a classifier")
            missing = set(labels) - set(classifier.info.labels)
            if missing:
                raise EstmError(f"the judge {classifier.name} does not know the labels {', '.join(sorted(missing))}")
        self.cue_judge, self.classifier = cue_judge, classifier
        self.classifier_name = None if classifier is None else classifier.name
        self.scratch = tempfile.TemporaryDirectory()

    def judge(self, samples: np.ndarray) -> dict:
        from .classify import classify_file

        heard = {"cue_judge": self.cue_judge.predict([analyze(samples, SAMPLE_RATE)])[0], "judge": None}
        if self.classifier is not None:
            path = Path(self.scratch.name) / "clip.wav"
            audio.save(path, at_least(samples, judge_frames(self.classifier, SAMPLE_RATE)), SAMPLE_RATE, force=True)
            heard["judge"] = classify_file(path, [self.classifier]).decisions[self.classifier.family]["label"]
        return heard
