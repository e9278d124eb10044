"""Transfer-experiment pairs, as the original's estm_train_exp.csv / estm_test_exp.csv: a content segment, an emotion
("style") segment from another song, and a `content_dev` flag on the rows used for the content-deviation metric.

Where the corpus knows the truth (SynthEmo renders each content in every quadrant), `target` names the segment a
perfect transfer would produce: the same content and position, in the emotion segment's quadrant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import EstmError


def make_pairs(
    manifest: pd.DataFrame,
    *,
    part: str = "test",
    n: int | None = None,
    content_dev: int = 150,
    seed: int = 0,
) -> pd.DataFrame:
    """`n` pairs (default: one per song of `part`) with content and emotion from different groups (songs).

    Columns: content, style (segment ids), content_dev (0/1, the first `content_dev` rows), content_label,
    style_label, and target where the truth is known.
    """
    segments = manifest[manifest["part"] == part].reset_index(drop=True)
    if segments["group"].nunique() < 2:
        raise EstmError(f"part {part!r} needs segments of at least two songs to pair content with another's emotion")
    rng = np.random.default_rng(seed)
    songs = segments["song_id"].unique()
    n = len(songs) if n is None else n
    content_songs = rng.choice(songs, size=n, replace=n > len(songs))
    by_song = segments.groupby("song_id").indices
    groups = segments["group"].to_numpy()

    rows = []
    for song in content_songs:
        content = rng.choice(by_song[song])
        others = np.flatnonzero(groups != groups[content])
        style = rng.choice(others)
        rows.append((content, style))
    contents, styles = (np.array(column) for column in zip(*rows))
    pairs = pd.DataFrame({
        "content": segments["segment_id"].to_numpy()[contents],
        "style": segments["segment_id"].to_numpy()[styles],
        "content_dev": (np.arange(n) < content_dev).astype(int),
        "content_label": segments["label"].to_numpy()[contents],
        "style_label": segments["label"].to_numpy()[styles],
    })
    target = _known_targets(manifest, segments.iloc[contents], segments["label"].to_numpy()[styles])
    if target is not None:
        pairs["target"] = target
    return pairs


def _known_targets(manifest: pd.DataFrame, contents: pd.DataFrame, style_labels: np.ndarray) -> list[str] | None:
    """Segment ids of the same content rendered with the style's label, when every such rendering exists
    (groups that hold one song per label, as SynthEmo's); else None."""
    per_group = manifest.groupby("group")
    songs, labels = per_group["song_id"].nunique(), per_group["label"].nunique()
    if not ((songs == labels) & (labels > 1)).all():  # a group must be one content in several labels
        return None
    lookup = {
        (group, label, position): segment_id
        for group, label, position, segment_id in manifest[["group", "label", "position", "segment_id"]].itertuples(
            index=False
        )
    }
    targets = [
        lookup.get((group, label, position))
        for group, position, label in zip(contents["group"], contents["position"], style_labels)
    ]
    return None if any(target is None for target in targets) else targets
