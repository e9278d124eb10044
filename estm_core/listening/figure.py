"""results.png: a listening test's results at a glance. Above, each system's identification rate (with the asked
arousal and valence) and mean quality, with 95 % intervals; below, each system's confusion matrix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..labels import QUADRANTS
from ..plots import save_png

SHARES = (("identified", "quadrant", "#2f6fdf"), ("arousal", "arousal", "#e07b39"), ("valence", "valence", "#3a9e6f"))


def results_png(summary: dict, path: str | Path, *, force: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    systems = summary["systems"]
    identified = [name for name, figures in systems.items() if "identified" in figures]
    rated = [name for name, figures in systems.items() if "quality" in figures]
    columns = max(2, len(identified))
    figure = plt.figure(figsize=(max(9.0, 2.3 * columns), 7.2 if identified else 3.8))
    grid = figure.add_gridspec(2 if identified else 1, columns, height_ratios=[1.25, 1] if identified else [1])
    half = columns // 2
    if identified:
        _shares(figure.add_subplot(grid[0, :half] if rated else grid[0, :]), systems, identified)
    if rated:
        _quality(figure.add_subplot(grid[0, half:] if identified else grid[0, :]), systems, rated)
    for place, name in enumerate(identified):
        _confusion(figure.add_subplot(grid[1, place]), name, systems[name]["confusion"], first=place == 0)
    listeners = summary["listeners"]
    figure.suptitle(f"{summary['test']}: {listeners['kept']} listeners kept of {listeners['started']} "
                    f"({len(listeners['excluded'])} excluded); Fleiss' kappa "
                    f"{_number(summary['agreement']['fleiss_kappa'])}", fontsize=10)
    figure.tight_layout()
    return save_png(figure, path, force=force)


def _number(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _shares(axes, systems: dict, names: list[str]) -> None:
    width = 0.8 / len(SHARES)
    for offset, (key, label, colour) in enumerate(SHARES):
        values = np.array([systems[name][key]["share"] for name in names], dtype=float)
        intervals = np.array([systems[name][key]["interval"] for name in names], dtype=float)
        errors = np.abs(intervals.T - values)
        axes.bar(np.arange(len(names)) + (offset - 1) * width, values, width, yerr=np.nan_to_num(errors),
                 color=colour, label=label, capsize=2)
    axes.axhline(0.25, color="#2f6fdf", linestyle=":", linewidth=1)
    axes.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_title("heard as asked (chance: quadrant 0.25, arousal and valence 0.5)", fontsize=9)
    axes.legend(fontsize=7, loc="upper left")


def _quality(axes, systems: dict, names: list[str]) -> None:
    means = np.array([systems[name]["quality"]["mean"] for name in names], dtype=float)
    intervals = np.array([systems[name]["quality"]["interval"] for name in names], dtype=float)
    axes.bar(range(len(names)), means, 0.6, yerr=np.nan_to_num(np.abs(intervals.T - means)), color="#7a6fd0",
             capsize=3)
    axes.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_title("quality (MUSHRA, 0-100)", fontsize=9)


def _confusion(axes, name: str, confusion: dict, first: bool) -> None:
    counts = np.array([[confusion[asked][heard] for heard in QUADRANTS.labels] for asked in QUADRANTS.labels])
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                  color="white" if shares[row, column] > 0.6 else "black")
    axes.set_xticks(range(4), QUADRANTS.labels, fontsize=7)
    axes.set_yticks(range(4), QUADRANTS.labels, fontsize=7)
    axes.set_xlabel("answered", fontsize=7)
    if first:
        axes.set_ylabel("asked", fontsize=7)
    axes.set_title(name, fontsize=8)
