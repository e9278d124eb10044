"""A judge that is not a neural network: multinomial logistic regression on the cue meter's measurements.

    judge = CueJudge.fit(cues, labels)        # Cues of the training files and their quadrants
    judge.predict(other_cues)                 # -> a label per Cues

It scores a transfer's outputs beside a mer model (estm evaluate transfer). It reads only the cue meter's cues, so what
it hears is the music's tempo, loudness, brightness, articulation, register and mode, not any model's features.
scikit-learn fits it; predicting needs only numpy and the weights (as the shipped recogniser stores them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .meter import Cues

L2 = 1e-2  # ridge on the weights (features are standardised): keeps a small training set from being fitted exactly


def features(cues: Cues) -> list[float]:
    """The numbers the judge reads: rates and frequencies on log scales (a tempo twice as fast is as far as one half
    as fast), the mode as +1 major / -1 minor (0 when unknown). NaN where the meter had nothing to measure."""
    def log(value: float) -> float:
        return math.log(value) if value is not None and value > 0 else math.nan

    mode = {"major": 1.0, "minor": -1.0}.get(cues.mode, 0.0)
    return [log(cues.onset_rate), log(cues.tempo_bpm), cues.loudness_lufs, cues.dynamic_range_db,
            log(cues.centroid_hz), cues.tilt_db_per_octave, cues.percussive_ratio, cues.onset_decay,
            cues.pitch_centroid_midi, mode]


@dataclass
class CueJudge:
    labels: list[str]
    mean: np.ndarray  # (features,) of the training set: also what a missing value is taken to be
    scale: np.ndarray  # (features,)
    weights: np.ndarray  # (features + 1, classes), the last row the bias

    @classmethod
    def fit(cls, cues: list[Cues], labels: list[str]) -> "CueJudge":
        from sklearn.linear_model import LogisticRegression  # here: a judge that only predicts never imports it

        names = sorted(set(labels))
        if len(names) < 2:
            raise ValueError("the cue judge needs examples of at least two labels")
        raw = np.array([features(item) for item in cues], dtype=np.float64)
        mean = np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.nanstd(np.where(np.isfinite(raw), raw, np.nan), axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        judge = cls(names, mean, scale, np.zeros((raw.shape[1] + 1, len(names))))
        inputs = judge._inputs(raw)[:, :-1]
        # The model is a softmax over every label, minimising the mean log-loss + L2 * (the weights' squares, not the
        # biases'). scikit-learn minimises C * (summed log-loss) + (squares) / 2: the same at C = 1 / (2 L2 n). With
        # two labels it fits one vector w for the second against the first: the softmax's optimum there is -w/2, +w/2,
        # whose squares sum to |w|^2 / 2, so C doubles.
        two = len(names) == 2
        model = LogisticRegression(C=(2.0 if two else 1.0) / (2 * L2 * len(inputs)), tol=1e-8, max_iter=10_000)
        model.fit(inputs, [names.index(label) for label in labels])
        weights = np.vstack([model.coef_.T, model.intercept_])
        if two:
            weights = np.hstack([-weights / 2, weights / 2])
        # the biases are unique only up to a shift that changes no probability: centred, as the softmax's own optimum
        weights[-1] -= weights[-1].mean()
        judge.weights = weights
        return judge

    def _inputs(self, raw: np.ndarray) -> np.ndarray:
        standard = (np.where(np.isfinite(raw), raw, self.mean) - self.mean) / self.scale
        return np.hstack([standard, np.ones((len(raw), 1))])

    def probabilities(self, cues: list[Cues]) -> np.ndarray:
        """(len(cues), classes) probabilities in the order of `labels`."""
        logits = self._inputs(np.array([features(item) for item in cues], dtype=np.float64)) @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, cues: list[Cues]) -> list[str]:
        return [self.labels[i] for i in self.probabilities(cues).argmax(axis=1)]
