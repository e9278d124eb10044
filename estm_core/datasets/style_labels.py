"""Style labels of a segment cache's segments: the quadrant each ESTM model is trained to give, either the dataset's
own ("truth") or a mer model's decisions (`estm data label`, or the original project's predictions file)."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import numpy as np
import pandas as pd

from ..errors import EstmError
from ..labels import QUADRANTS
from .segment import read_manifest


def read_style_labels(source: str | Path, cache_dir: str | Path) -> tuple[dict[str, str], str | None]:
    """Style labels by segment id, and the mer model that made them (None for "truth").

    `source` is "truth" (the manifest's own quadrant labels) or a predictions CSV: ours from `estm data label`
    (segment_id, style_label, mer_model) or the original's deam_predictions.csv (mer_Q1..mer_Q4 and the segment's
    path in song_id), whose argmax is the label, as the original trained.
    """
    if str(source) == "truth":
        manifest = read_manifest(cache_dir)
        return dict(zip(manifest["segment_id"], manifest["label"])), None
    path = Path(source)
    if not path.is_file():
        raise EstmError(f"{path}: no such predictions file (or say --style-labels truth)")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = [f"mer_{label}" for label in QUADRANTS.labels]
    if not set(columns) <= set(table.columns):
        raise EstmError(f"{path}: expected columns {', '.join(columns)} (from `estm data label`)")
    if "segment_id" in table.columns:
        ids = table["segment_id"]
    else:  # 'data\DEAM_standard_10s\10-0.wav' -> 10-0
        ids = table["song_id"].map(lambda text: PureWindowsPath(text).stem)
    labels = np.array(QUADRANTS.labels)[table[columns].astype(float).to_numpy().argmax(axis=1)]
    teacher = table["mer_model"].iloc[0] if "mer_model" in table.columns and len(table) else None
    return dict(zip(ids, labels)), teacher
