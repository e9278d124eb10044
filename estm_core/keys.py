"""Key finding: Krumhansl-Schmuckler's method with the Aarden-Essen key profiles (Aarden 2003, the major and minor
pitch-class distributions of the Essen folksong collection), which music21's key analysis uses too.

The same rule serves scores (pitch classes weighted by duration) and audio (a chroma summed over time).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor")
MODE_DEGREES = {"major": (4, 9, 11), "minor": (3, 8, 10)}  # semitones above the tonic of degrees 3, 6 and 7: the
#   degrees a change of mode moves (CMERS), in scores and in audio alike
# The profiles for a tonic of C, pitch classes C..B (Aarden 2003; the values music21's AardenEssen weights hold)
PROFILES = {"major": (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                      0.232998, 4.95122),
            "minor": (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                      7.37619, 1.75623)}


@lru_cache(maxsize=1)
def key_profiles() -> np.ndarray:
    """(24, 12): the major, then the minor profile rotated to each tonic, centred and of unit norm."""
    rows = [np.roll(PROFILES[mode], tonic) for mode in MODES for tonic in range(12)]
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
