"""Emotion from any audio with no trained network: arousal and valence (Russell's axes) read from the cue meter.

    emotion = recognise(analyze("song.mp3"))   # Emotion(arousal, valence): each -1..+1
    emotion.quadrant, emotion.probabilities   # "Q1", {"Q1": 0.71, ...}

Each axis is a logistic regression on the cue judge's features (judge.features: tempo as onsets per second,
loudness, dynamics, brightness, articulation, register, mode), fitted on a development corpus and shipped in
data/recogniser.json, so a fresh install hears emotion before any model is trained. `estm train recogniser` makes
the file again from a corpus split (the README gives the command that made the shipped one). Arousal is
2 P(high arousal) - 1, valence 2 P(positive) - 1; the quadrant probabilities take the two axes as independent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..labels import QUADRANTS
from .meter import Cues
from .judge import CueJudge

AXES = ("arousal", "valence")
HIGH_SIDE = {"arousal": ("Q1", "Q2"), "valence": ("Q1", "Q4")}  # the quadrants on each axis's positive side
FORMAT = 1  # the recogniser file's layout


@dataclass(frozen=True)
class Emotion:
    """Where a piece of audio sits on Russell's two axes."""

    arousal: float  # -1 calm .. +1 excited (2 P(high arousal) - 1)
    valence: float  # -1 negative .. +1 positive

    @property
    def probabilities(self) -> dict[str, float]:
        """Each quadrant's probability, the two axes taken as independent."""
        high, positive = (1 + self.arousal) / 2, (1 + self.valence) / 2
        return {"Q1": high * positive, "Q2": high * (1 - positive), "Q3": (1 - high) * (1 - positive),
                "Q4": (1 - high) * positive}

    @property
    def quadrant(self) -> str:
        probabilities = self.probabilities
        return max(probabilities, key=probabilities.get)

    def to_dict(self) -> dict:
        return {"arousal": float(self.arousal), "valence": float(self.valence), "quadrant": self.quadrant,
                "probabilities": {label: float(p) for label, p in self.probabilities.items()}}


@dataclass
class Recogniser:
    axes: dict[str, CueJudge]  # "arousal" / "valence" -> a two-class judge with labels ["high", "low"]
    typical: dict[str, Emotion]  # each quadrant's mean emotion over the files it was fitted on
    fitted_on: str  # what it learned from, in words

    @classmethod
    def fit(cls, cues: list[Cues], labels: list[str], fitted_on: str) -> "Recogniser":
        """Fitted on quadrant-labelled audio: `labels` Q1..Q4 for each of `cues`."""
        if sorted(set(labels)) != list(QUADRANTS.labels):
            raise ValueError("the recogniser learns from audio of all four quadrants")
        axes = {axis: CueJudge.fit(cues, ["high" if label in HIGH_SIDE[axis] else "low" for label in labels])
                for axis in AXES}
        recogniser = cls(axes, {}, fitted_on)
        heard = recogniser.recognise_all(cues)
        recogniser.typical = {quadrant: Emotion(*(float(np.mean([getattr(emotion, axis) for emotion, label
                                                                  in zip(heard, labels) if label == quadrant]))
                                                  for axis in AXES))
                              for quadrant in QUADRANTS.labels}
        return recogniser

    def recognise_all(self, cues: list[Cues]) -> list[Emotion]:
        sides = {axis: 2 * judge.probabilities(cues)[:, judge.labels.index("high")] - 1
                 for axis, judge in self.axes.items()}
        return [Emotion(float(arousal), float(valence)) for arousal, valence in zip(sides["arousal"], sides["valence"])]

    def recognise(self, cues: Cues) -> Emotion:
        return self.recognise_all([cues])[0]

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "fitted_on": self.fitted_on,
            "axes": {axis: {"labels": judge.labels, "mean": judge.mean.tolist(), "scale": judge.scale.tolist(),
                            "weights": judge.weights.tolist()} for axis, judge in self.axes.items()},
            "typical": {quadrant: {"arousal": emotion.arousal, "valence": emotion.valence}
                        for quadrant, emotion in self.typical.items()}}, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str) -> "Recogniser":
        from ..errors import EstmError

        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
            axes = {axis: CueJudge(list(data["axes"][axis]["labels"]), *(
                np.asarray(data["axes"][axis][key], dtype=np.float64) for key in ("mean", "scale", "weights")))
                for axis in AXES}
            typical = {quadrant: Emotion(float(data["typical"][quadrant]["arousal"]),
                                         float(data["typical"][quadrant]["valence"])) for quadrant in QUADRANTS.labels}
            numbers = np.concatenate([part.ravel() for judge in axes.values()
                                      for part in (judge.mean, judge.scale, judge.weights)])
            if not np.isfinite(numbers).all():
                raise ValueError("a weight is not finite")
            return cls(axes, typical, str(data.get("fitted_on", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise EstmError(f"{source}: not a usable recogniser file ({error})") from None


RECOGNISER_NAME = "recogniser.json"  # in the model store: one made by `estm train recogniser`, used before the shipped


def store_path() -> Path:
    """Where `estm train recogniser` puts the recogniser it fits: the model store."""
    from ..store import store_root

    return store_root() / RECOGNISER_NAME


@lru_cache(maxsize=4)
def _read(path: str, modified: float) -> Recogniser:
    return Recogniser.from_json(Path(path).read_text(), path)


def shipped_path() -> Path:
    """The recogniser estm ships (data/recogniser.json)."""
    from ..resources import data_file

    return Path(data_file(RECOGNISER_NAME))


def active_recogniser() -> Recogniser:
    """The store's recogniser (`estm train recogniser`) if there is one, else the one estm ships."""
    path = store_path() if store_path().is_file() else shipped_path()
    return _read(str(path), path.stat().st_mtime)


def recognise(cues: Cues) -> Emotion:
    """The active recogniser's reading of `cues`."""
    return active_recogniser().recognise(cues)


def fit_split(split, *, part: str = "train", jobs: int = 1, on_progress=None) -> Recogniser:
    """A recogniser fitted on the quadrant-labelled files of `part` of a split table (`estm data split`), their
    paths resolved; each file analysed once, `jobs` at a time. Files that cannot be analysed are an EstmError."""
    from ..errors import EstmError
    from .meter import analyze_files

    rows = split[(split["part"] == part) & split["label"].isin(QUADRANTS.labels)]
    if rows["label"].nunique() < len(QUADRANTS.labels):
        raise EstmError(f"the split's {part} part needs audio of all four quadrants to fit a recogniser")
    measured, failed = [], []
    for number, (_, result) in enumerate(analyze_files(list(rows["path"]), jobs=jobs)):
        (failed if isinstance(result, Exception) else measured).append(result)
        if on_progress:
            on_progress(number + 1, len(rows))
    if failed:
        raise EstmError(f"{len(failed)} files could not be analysed (first: {failed[0]})")
    works = rows["group"].nunique() if "group" in rows.columns else len(rows)
    return Recogniser.fit(measured, list(rows["label"]),
                          f"{len(rows)} files ({works} works) of a split's {part} part")
