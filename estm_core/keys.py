"""Key finding: Krumhansl-Schmuckler's method with the Aarden-Essen key profiles that music21's key analysis uses.

The same rule serves scores (pitch classes weighted by duration) and audio (a chroma summed over time).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor")


@lru_cache(maxsize=1)
def key_profiles() -> np.ndarray:
    """(24, 12): the major, then the minor profile rotated to each tonic, centred and of unit norm."""
    from music21.analysis.discrete import AardenEssen

    analysis = AardenEssen()
    rows = [np.roll(analysis.getWeights(mode), tonic) for mode in MODES for tonic in range(12)]
    profiles = np.array(rows, dtype=float)
    profiles -= profiles.mean(axis=1, keepdims=True)
    return profiles / np.linalg.norm(profiles, axis=1, keepdims=True)


def key_correlations(pitch_classes: np.ndarray) -> np.ndarray:
    """(12,) weights of the pitch classes C..B -> (24,) Pearson correlation with each key: majors C..B, minors C..B."""
    weights = np.asarray(pitch_classes, dtype=float)
    centred = weights - weights.mean()
    return key_profiles() @ centred / (np.linalg.norm(centred) or 1.0)


def find_key(pitch_classes: np.ndarray) -> tuple[int, str, float]:
    """(tonic pitch class, "major" or "minor", correlation of the best key: 1 = certain)."""
    correlations = key_correlations(pitch_classes)
    best = int(np.argmax(correlations))
    return best % 12, MODES[best // 12], float(correlations[best])
