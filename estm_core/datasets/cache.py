"""torch Datasets over a segment cache: waveform segments with labels, for DataLoaders with any number of workers.

Features (log-mel) are not computed here: the training loop computes them in batches on the device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import EstmError
from .segment import open_cache, read_manifest, to_float


class SegmentDataset(Dataset):
    """Items are (waveform float32 (segment_length,), label index int64) for the segments of one part (all parts if
    `part` is None).

    `labels` fixes the label order (e.g. QUADRANTS.labels); by default the sorted labels present. `label_column`
    picks which manifest column is the label; None gives unlabelled items (label -1); `label_map` (segment id ->
    label) takes the labels from elsewhere. The cache is memory-mapped lazily, in each worker process.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        part: str | None = "train",
        *,
        label_column: str | None = "label",
        labels: list[str] | tuple[str, ...] | None = None,
        label_map: dict[str, str] | None = None,
    ):
        self.cache_dir = Path(cache_dir)
        manifest = read_manifest(self.cache_dir)
        if part is not None:
            manifest = manifest[manifest["part"] == part]
        if manifest.empty:
            raise EstmError(f"{self.cache_dir}: no segments in part {part!r}")
        if label_map is not None:  # labels from elsewhere (e.g. a MER model's predictions), by segment id
            unlabelled = sorted(set(manifest["segment_id"]) - set(label_map))
            if unlabelled:
                raise EstmError(f"{len(unlabelled)} segments of {self.cache_dir} have no label in the given labels "
                                f"(first: {unlabelled[0]})")
            manifest = manifest.assign(mapped_label=manifest["segment_id"].map(label_map))
            label_column = "mapped_label"
        self.manifest = manifest.reset_index(drop=True)
        self.rows = self.manifest["index"].to_numpy()
        self.labels = list(labels or [])
        if label_column is None:
            self.targets = torch.full((len(self.rows),), -1, dtype=torch.long)
        else:
            if label_column not in manifest.columns:
                raise EstmError(f"{self.cache_dir}: the manifest has no {label_column!r} column")
            self.labels = self.labels or sorted(set(manifest[label_column]))
            unknown = set(manifest[label_column]) - set(self.labels)
            if unknown:
                raise EstmError(f"{self.cache_dir}: labels {', '.join(sorted(unknown))} are not in {self.labels}")
            self.targets = torch.tensor([self.labels.index(label) for label in manifest[label_column]],
                                        dtype=torch.long)
        self._cache: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None:
            self._cache = open_cache(self.cache_dir)
        waveform = torch.from_numpy(to_float(self._cache[self.rows[item]]))
        return waveform, self.targets[item]

    def __getstate__(self) -> dict:
        # pickled into DataLoader workers: each worker maps the file itself instead of copying the array
        return {**self.__dict__, "_cache": None}
