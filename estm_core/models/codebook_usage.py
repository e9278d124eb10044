"""What a VQ model's codebooks hold and how its quantisers use them: the analysis behind `estm plot codebook` and the
demo's codebook figure (plots.py draws it). torch is imported inside the functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..errors import EstmError
from ..families import with_codebooks

VQ_FAMILIES = with_codebooks()


@dataclass(frozen=True)
class LevelUsage:
    """How often each code of one quantiser level was chosen: `counts` (codebook_size,) int64."""

    level: str
    counts: np.ndarray

    @property
    def codebook_size(self) -> int:
        return len(self.counts)

    @property
    def vectors(self) -> int:
        return int(self.counts.sum())

    @property
    def codes_used(self) -> int:
        return int(np.count_nonzero(self.counts))

    @property
    def perplexity(self) -> float:
        """exp(entropy of the code histogram), as VectorQuantizer.usage: 1 if one code takes all, K if uniform."""
        if not self.vectors:
            return 0.0
        shares = self.counts[self.counts > 0] / self.vectors
        return float(np.exp(-(shares * np.log(shares)).sum()))


def _hierarchy(model):
    hierarchy = getattr(model, "hierarchy", None)
    if hierarchy is None or not hasattr(hierarchy, "quantizers"):
        family = getattr(model, "family", type(model).__name__)
        raise EstmError(f"a {family} model has no VQ codebooks (only {', '.join(VQ_FAMILIES)} models have)")
    return hierarchy


def check_vq_family(family: str, source: str = "the model") -> None:
    """EstmError unless `family` has VQ codebooks."""
    if family not in VQ_FAMILIES:
        raise EstmError(f"{source}: a {family} model has no VQ codebooks; codebook plots need an "
                        f"{', '.join(VQ_FAMILIES[:-1])} or {VQ_FAMILIES[-1]} model")


def codebooks(model) -> dict[str, np.ndarray]:
    """{level: (codebook_size, dim) float32 codebook} of an hvqvae/estm1/estm2 model, bottom to top."""
    return {level: quantizer.codebook.detach().float().cpu().numpy()
            for level, quantizer in _hierarchy(model).quantizers.items()}


def codebook_usage(model, batches: Iterable[np.ndarray], *, batch_size: int = 8) -> dict[str, LevelUsage]:
    """Count which code each latent vector of each level chooses when `batches` of (n, segment_length) waveforms
    (peak-normalised segments, as the model was trained on) go through the model's encoders and quantisers.

    Works on the model's device; arrays larger than `batch_size` segments are cut into batches of that size.
    """
    import torch

    hierarchy = _hierarchy(model)
    device = next(model.parameters()).device
    counts = {level: torch.zeros(quantizer.codebook.shape[0], dtype=torch.int64, device=device)
              for level, quantizer in hierarchy.quantizers.items()}
    with torch.no_grad():
        for array in batches:
            array = np.asarray(array, dtype=np.float32)
            for start in range(0, len(array), batch_size):
                waveforms = torch.from_numpy(array[start:start + batch_size]).to(device)
                _, indices, _ = hierarchy.quantize(hierarchy.encode(waveforms))
                for level, chosen in indices.items():
                    counts[level] += torch.bincount(chosen.flatten(), minlength=len(counts[level]))
    usage = {level: LevelUsage(level, value.cpu().numpy()) for level, value in counts.items()}
    if not any(level.vectors for level in usage.values()):
        raise EstmError("no audio segments to count codes over")
    return usage


def codebook_pca(entries: np.ndarray) -> tuple[np.ndarray, float]:
    """(K, dim) entries -> ((K, 2) coordinates on the first two principal components, share of variance they hold)."""
    centred = entries.astype(np.float64) - entries.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    total = float(np.square(singular).sum())
    kept = min(2, len(singular))
    coordinates = np.zeros((len(entries), 2))
    coordinates[:, :kept] = centred @ components[:kept].T
    return coordinates, float(np.square(singular[:kept]).sum() / total) if total > 0 else 0.0
