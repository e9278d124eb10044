"""Figures, written as PNG files with matplotlib's headless backend. The CLI's `estm plot` and the demo report use
these same functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def confusion_png(confusion: np.ndarray, labels: list[str], path: str | Path, *, title: str = "",
                  force: bool = False) -> Path:
    """A confusion matrix (rows: true label, columns: predicted), counts in the cells, shaded by row share."""
    plt = _pyplot()
    confusion = np.asarray(confusion)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(labels) + 2.5)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(len(labels)):
        for column in range(len(labels)):
            axes.text(column, row, str(confusion[row, column]), ha="center", va="center",
                      color="white" if shares[row, column] > 0.6 else "black")
    figure.colorbar(image, ax=axes, label="share of the true class")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    with atomic_write(path, force) as temporary:
        figure.savefig(temporary, dpi=120)
    plt.close(figure)
    return Path(path)
