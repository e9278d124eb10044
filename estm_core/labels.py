"""Label sets: Russell's four quadrants, GTZAN's ten genres, the nine GEMS categories."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSet:
    name: str
    labels: tuple[str, ...]
    descriptions: tuple[str, ...] = ()

    def index(self, label: str) -> int:
        """Position of `label`, case-insensitively; a ValueError names the valid ones."""
        lowered = [known.lower() for known in self.labels]
        try:
            return lowered.index(label.strip().lower())
        except ValueError:
            raise ValueError(f"unknown {self.name} label {label!r} (expected one of {', '.join(self.labels)})") from None

    def __len__(self) -> int:
        return len(self.labels)


# Russell's circumplex, quadrant by quadrant: valence (pleasantness) x arousal (energy).
QUADRANTS = LabelSet(
    "quadrant",
    ("Q1", "Q2", "Q3", "Q4"),
    (
        "positive valence, high arousal (happy, excited)",
        "negative valence, high arousal (angry, tense)",
        "negative valence, low arousal (sad, depressed)",
        "positive valence, low arousal (calm, relaxed)",
    ),
)

GTZAN_GENRES = LabelSet(
    "genre", ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
)

# Emotify's column names (data.csv) for the Geneva Emotional Music Scale.
GEMS9 = LabelSet(
    "gems",
    ("amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power", "joyful_activation", "tension",
     "sadness"),
)

# The GEMS category nearest each of Russell's quadrants (by the valence and arousal of the GEMS factors): the label
# that a corpus rendered in quadrants (the demo's) gives a GEMS classifier, four of the nine.
GEMS_OF_QUADRANT = {"Q1": "joyful_activation", "Q2": "tension", "Q3": "sadness", "Q4": "calmness"}

# DEAM's static annotations are 1-9 means; the original scaled them to [-1, 1] by the midrange and half-range of the
# observed values before taking signs.
DEAM_VALENCE_CENTRE, DEAM_VALENCE_HALF_RANGE = 5.0, 3.4
DEAM_AROUSAL_CENTRE, DEAM_AROUSAL_HALF_RANGE = 4.85, 3.25


def scale_deam(valence: float, arousal: float) -> tuple[float, float]:
    """DEAM 1-9 valence/arousal means -> the original's [-1, 1] scale."""
    return (
        (valence - DEAM_VALENCE_CENTRE) / DEAM_VALENCE_HALF_RANGE,
        (arousal - DEAM_AROUSAL_CENTRE) / DEAM_AROUSAL_HALF_RANGE,
    )


def quadrant(valence: float, arousal: float) -> str:
    """Quadrant of a point on the [-1, 1] scale; zero counts as negative (Q2: V <= 0, A > 0, and so on)."""
    if arousal > 0:
        return "Q1" if valence > 0 else "Q2"
    return "Q4" if valence > 0 else "Q3"


def deam_quadrant(valence_mean: float, arousal_mean: float) -> str:
    """Quadrant of a DEAM song from its 1-9 static annotation means, exactly as the original assigned it."""
    return quadrant(*scale_deam(valence_mean, arousal_mean))
