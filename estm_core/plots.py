"""Figures, written as PNG files with matplotlib's headless backend. The CLI's `estm plot` and the demo report use
these same functions.

Each figure has a `*_figure(...)` function that builds and returns a matplotlib Figure (for a caller that wants to
look at or change it) and a `*_png(..., path, force=False)` function that writes it atomically and closes it.
matplotlib and torch are imported inside the functions, so importing this module stays cheap. Figures are drawn
from what callers read: histories with store.read_history, evaluations with evaluate.read_evaluation, audio with
audio.load_clip.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import EstmError
from .files import atomic_write
from .store import check_history
from .training.config import TrainConfig

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .audio import Clip
    from .models.codebook_usage import LevelUsage

DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: "Figure", path: str | Path, *, force: bool = False, dpi: int = DPI) -> Path:
    """Write `figure` to `path` atomically (refusing an existing file unless `force`) and close it."""
    plt = _pyplot()
    try:
        with atomic_write(path, force) as temporary:
            figure.savefig(temporary, dpi=dpi)
    finally:
        plt.close(figure)
    return Path(path)


# --------------------------------------------------------------------------------------------------- confusion


def confusion_figure(confusion: np.ndarray, labels: list[str], *, title: str = "") -> "Figure":
    """A confusion matrix (rows: true label, columns: predicted), counts in the cells, shaded by row share."""
    plt = _pyplot()
    confusion = np.asarray(confusion)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(labels) + 2.5)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    slanted = len(labels) > 5
    axes.set_xticks(range(len(labels)), labels, rotation=45 if slanted else 0, ha="right" if slanted else "center",
                    rotation_mode="anchor" if slanted else "default")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(len(labels)):
        for column in range(len(labels)):
            axes.text(column, row, str(confusion[row, column]), ha="center", va="center",
                      color="white" if shares[row, column] > 0.6 else "black")
    figure.colorbar(image, ax=axes, label="share of the true class", fraction=0.046, pad=0.04)  # as tall as the matrix
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return figure


def confusion_png(confusion: np.ndarray, labels: list[str], path: str | Path, *, title: str = "",
                  force: bool = False) -> Path:
    """A confusion matrix (rows: true label, columns: predicted), counts in the cells, shaded by row share."""
    return save_png(confusion_figure(confusion, labels, title=title), path, force=force)


def evaluation_title(summary: dict) -> str:
    """"MODEL on PART: accuracy 81.2%" from an evaluation summary (what `estm evaluate classifier` puts on its PNG)."""
    parts = [str(summary.get("model") or "classifier")]
    if summary.get("part"):
        parts.append(f" on {summary['part']}")
    if isinstance(summary.get("accuracy"), (int, float)):
        parts.append(f": accuracy {summary['accuracy']:.1%}")
    return "".join(parts)


def evaluation_confusion_png(summary: dict, path: str | Path, *, force: bool = False) -> Path:
    """The confusion matrix of an evaluation summary (evaluate.read_evaluation's or evaluate_classifier's)."""
    return confusion_png(np.asarray(summary["confusion"]), list(summary["labels"]), path,
                         title=evaluation_title(summary), force=force)


# ----------------------------------------------------------------------------------------------------- history

HISTORY_NOT_PLOTTED = ("epoch", "seconds")
LEVEL_SUFFIXES = ("_bottom", "_middle", "_top")
COUNTED = ("perplexity", "codes_used")  # counts of codes: a linear axis, whatever their range
PANEL_LABELS = {
    "loss": "loss",
    "reconstruction": "reconstruction (MSE / train var.)",
    "vq": "VQ loss",
    "perplexity": "codebook perplexity",
    "codes_used": "codes used",
    "lr": "learning rate",
}


def history_panels(history: "pd.DataFrame") -> list[tuple[str, list[str]]]:
    """What `history_figure` draws: [(panel, [columns])], the loss first.

    One panel per kind of term: a term and its `val_` twin share a panel, and per-level terms (`vq_bottom`,
    `perplexity_top`, ...) share one. `epoch` and `seconds` are not drawn; `lr` only when it changed.
    """
    import pandas as pd

    panels: dict[str, list[str]] = {}
    for column in history.columns:
        if column in HISTORY_NOT_PLOTTED or not pd.api.types.is_numeric_dtype(history[column]):
            continue
        if column == "lr" and history[column].nunique(dropna=True) <= 1:
            continue
        base = column.removeprefix("val_")
        panel = next((base.removesuffix(suffix) for suffix in LEVEL_SUFFIXES if base.endswith(suffix)), base)
        panels.setdefault(panel, [])
        for name in (base, f"val_{base}"):
            if name in history.columns and name not in panels[panel]:
                panels[panel].append(name)
    order = sorted(panels, key=lambda panel: panel != "loss")  # stable: the rest as the history has them
    return [(panel, panels[panel]) for panel in order]


def best_epoch(history: "pd.DataFrame", monitor: str | None = None) -> int | None:
    """The epoch with the best `monitor` (default val_loss, else loss): the highest for accuracy, perplexity and codes
    used, else the lowest, as the training loop decides (TrainConfig.direction)."""
    monitor = monitor or ("val_loss" if "val_loss" in history.columns else "loss")
    if monitor not in history.columns or history[monitor].isna().all():
        return None
    values = history[monitor]
    higher = TrainConfig(monitor=monitor).direction == "max"
    return int(history.loc[values.idxmax() if higher else values.idxmin(), "epoch"])


def history_figure(history: "pd.DataFrame", *, title: str = "", best: int | None = None) -> "Figure":
    """Training curves, one panel per kind of term (`history_panels`): train solid, validation dashed; per-level
    terms in one colour per level; `best` (an epoch) marked in every panel."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    plt = _pyplot()
    check_history(history)
    panels = history_panels(history)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes_grid = plt.subplots(rows, columns, figsize=(4.4 * columns, 2.9 * rows + 0.9), squeeze=False,
                                     layout="constrained")
    epochs = history["epoch"].to_numpy()
    marker = "o" if len(epochs) <= 30 else None
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axes, (panel, names) in zip(axes_grid.flat, panels):
        bases = list(dict.fromkeys(name.removeprefix("val_") for name in names))
        for name in names:
            base = name.removeprefix("val_")
            axes.plot(epochs, history[name].to_numpy(dtype=float), color=colours[bases.index(base) % len(colours)],
                      marker=marker, markersize=3, linestyle="--" if name.startswith("val_") else "-")
        if len(bases) > 1:  # per-level terms: say which colour is which level
            axes.legend([Line2D([], [], color=colours[i % len(colours)]) for i in range(len(bases))],
                        [base.removeprefix(f"{panel}_") for base in bases], fontsize=8)
        if best is not None:
            axes.axvline(best, color="0.45", linestyle=":", linewidth=1.2)
        values = history[names].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if "accuracy" in panel:
            axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        elif panel not in COUNTED and len(values) and values.min() > 0 and values.max() / values.min() > 30:
            axes.set_yscale("log")  # losses that fall (or grow) by orders of magnitude
        axes.set_xlabel("epoch")
        axes.set_ylabel(PANEL_LABELS.get(panel, panel.replace("_", " ")))
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs.max() - epochs.min() < 2:  # one or two epochs: whole-number ticks need a wider axis
            axes.set_xlim(epochs.min() - 1, epochs.max() + 1)
        axes.grid(alpha=0.3)
    for axes in list(axes_grid.flat)[len(panels):]:
        axes.set_visible(False)
    key = [(Line2D([], [], color="0.2"), "train")]
    if any(name.startswith("val_") for _, names in panels for name in names):
        key.append((Line2D([], [], color="0.2", linestyle="--"), "validation"))
    if best is not None:
        key.append((Line2D([], [], color="0.45", linestyle=":"), f"best epoch ({best})"))
    figure.legend(*zip(*key), loc="outside lower center", ncols=len(key), fontsize=9, frameon=False)
    if title:
        figure.suptitle(title)
    return figure


def history_png(history: "pd.DataFrame", path: str | Path, *, title: str = "", best: int | None = None,
                force: bool = False) -> Path:
    """Training curves of a history as a PNG; see `history_figure`."""
    return save_png(history_figure(history, title=title, best=best), path, force=force)


# ------------------------------------------------------------------------------------------------- spectrogram

TOP_DB = 80.0
FREQUENCY_TICKS = (0, 250, 500, 1000, 2000, 4000, 8000, 16000)
ENVELOPE_BINS = 2000  # longer waveforms are drawn as a min/max envelope of this many columns


def spectrogram_settings(sample_rate: int) -> dict:
    """log-mel settings with the MER features' resolution in time and frequency at any rate: a ~46 ms window
    (1024 samples at 22.05 kHz), half of it as hop, 128 mel bands up to the Nyquist frequency."""
    n_fft = 1 << max(8, round(math.log2(0.0464 * sample_rate)))
    return {"sample_rate": sample_rate, "n_fft": n_fft, "hop_length": n_fft // 2, "n_mels": 128,
            "top_db": TOP_DB}


def clip_log_mel(clip: Clip) -> tuple[np.ndarray, dict]:
    """(n_mels, frames) log-mel in dB relative to the clip's loudest bin (0 dB, floored at -80 dB), and its
    settings (see `spectrogram_settings`)."""
    import torch

    from .features import log_mel

    settings = spectrogram_settings(clip.sample_rate)
    if not np.any(clip.samples):  # silence has no loudest bin to be 0 dB: show it at the floor
        frames = 1 + len(clip.samples) // settings["hop_length"]
        return np.full((settings["n_mels"], frames), -TOP_DB, np.float32), settings
    samples = clip.samples
    return log_mel(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), **settings)[0].numpy(), settings


def mel_ticks(sample_rate: int, n_mels: int) -> tuple[list[float], list[str]]:
    """Positions (in mel band index) and labels of round frequencies on a spectrogram's mel axis."""
    from .dsp import hz_to_mel

    nyquist = sample_rate / 2
    mel_edges = np.linspace(0.0, float(hz_to_mel(nyquist)), n_mels + 2)
    centres = mel_edges[1:-1]  # each band's centre, in mel
    positions, labels = [], []
    for hz in [*(tick for tick in FREQUENCY_TICKS if tick < nyquist * 0.97), nyquist]:
        position = float(np.interp(float(hz_to_mel(hz)), centres, np.arange(n_mels)))
        if positions and position - positions[-1] < 0.07 * n_mels:
            if hz != nyquist:
                continue
            positions.pop(), labels.pop()  # the Nyquist label wins over a round one just below it
        positions.append(position)
        labels.append(f"{hz / 1000:.3g}k" if hz >= 1000 else f"{hz:g}")
    return positions, labels


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width - width // 2):]


def _column_title(clip: Clip, width: int) -> str:
    lines = textwrap.wrap(clip.name, width) if len(clip.name) <= 2 * width else [_short(clip.name, width)]
    lines = lines[:2] if len(lines) <= 2 else [lines[0], _short("".join(lines[1:]), width)]
    if clip.cut:
        lines.append(f"first {clip.shown:g} s of {clip.duration:.1f} s")
    elif not np.any(clip.samples):
        lines.append("silent")
    return "\n".join(lines)


def _waveform(axes, clip: Clip, limit: float) -> None:
    samples = clip.samples
    if len(samples) > 2 * ENVELOPE_BINS:  # a min/max envelope: what a line through every sample would look like
        edges = np.linspace(0, len(samples), ENVELOPE_BINS + 1).astype(int)
        lows = np.minimum.reduceat(samples, edges[:-1])
        highs = np.maximum.reduceat(samples, edges[:-1])
        times = (edges[:-1] + edges[1:]) / 2 / clip.sample_rate
        axes.fill_between(times, lows, highs, color="C0", linewidth=0.4, edgecolor="C0")
    else:
        axes.plot(np.arange(len(samples)) / clip.sample_rate, samples, color="C0", linewidth=0.8)
    axes.set_xlim(0, max(clip.shown, 1 / clip.sample_rate))
    axes.set_ylim(-limit, limit)
    axes.axhline(0, color="0.6", linewidth=0.5)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("amplitude")


def spectrogram_figure(clips: Sequence[Clip], *, title: str = "") -> "Figure":
    """For each clip a column: its waveform above its log-mel spectrogram (time in s, mel frequency with Hz ticks, dB
    relative to the clip's maximum). Columns side by side in the order given, titled with the clip's name (and how
    much of a long file is shown)."""
    plt = _pyplot()
    if not clips:
        raise EstmError("no audio to show")
    count = len(clips)
    # a narrow last column holds the colorbar beside the spectrograms, so the waveforms keep their columns' width
    figure, axes_grid = plt.subplots(2, count + 1, figsize=(4.6 * count + 1.0, 5.6), squeeze=False,
                                     height_ratios=[1, 2.2], width_ratios=[1] * count + [0.045],
                                     layout="constrained")
    axes_grid[0, -1].set_axis_off()
    peak = max((float(np.abs(clip.samples).max()) for clip in clips if len(clip.samples)), default=0.0)
    limit = max(peak, 1e-3) * 1.05  # one amplitude scale for every column, so levels compare
    width = 44  # title characters that fit in one column at 10 pt
    image = None
    for column, clip in enumerate(clips):
        wave_axes, mel_axes = axes_grid[0, column], axes_grid[1, column]
        _waveform(wave_axes, clip, limit)
        wave_axes.set_title(_column_title(clip, width), fontsize=10)
        decibels, settings = clip_log_mel(clip)
        frame_seconds = settings["hop_length"] / clip.sample_rate
        image = mel_axes.imshow(decibels, origin="lower", aspect="auto", cmap="magma", vmin=-TOP_DB, vmax=0,
                                interpolation="nearest",
                                extent=(-frame_seconds / 2, (decibels.shape[1] - 0.5) * frame_seconds,
                                        -0.5, settings["n_mels"] - 0.5))
        mel_axes.set_xlim(0, max(clip.shown, frame_seconds))
        positions, labels = mel_ticks(clip.sample_rate, settings["n_mels"])
        mel_axes.set_yticks(positions, labels)
        mel_axes.set_xlabel("time (s)")
        mel_axes.set_ylabel("mel frequency (Hz)")
        if column:  # the units are the same in every column; say them once
            wave_axes.set_ylabel("")
            mel_axes.set_ylabel("")
    figure.colorbar(image, cax=axes_grid[1, -1], label="dB (re clip max)")
    if title:
        figure.suptitle(title)
    return figure


def spectrogram_png(clips: Sequence[Clip], path: str | Path, *, title: str = "", force: bool = False) -> Path:
    """Waveforms above log-mel spectrograms, one column per clip; see `spectrogram_figure`."""
    from .files import check_writable

    check_writable(path, force)  # before the spectrograms are computed
    return save_png(spectrogram_figure(clips, title=title), path, force=force)


# ---------------------------------------------------------------------------------------------------- codebook


def codebook_figure(usage: dict[str, LevelUsage] | None = None, *, codebook: dict[str, np.ndarray] | None = None,
                    title: str = "") -> "Figure":
    """Codebook usage, one row per level: the share of vectors per code index (left) and the same shares sorted
    (right, log scale, with the uniform share marked); perplexity and codes used in the titles.

    Without `usage`, the `codebook` entries themselves: per level a 2-D PCA of the entries, coloured by their norm.
    """
    if usage:
        return _usage_figure(usage, title)
    if codebook:
        return _pca_figure(codebook, title)
    raise EstmError("nothing to plot: give codebook usage or the codebooks")


def _percent(value: float, _position=None) -> str:
    """A share as a percentage with as many digits as it needs (0.01%, 0.5%, 12%), for log axes too."""
    return f"{value * 100:.3g}%"


def _usage_figure(usage: dict[str, LevelUsage], title: str) -> "Figure":
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    plt = _pyplot()
    figure, axes_grid = plt.subplots(len(usage), 2, figsize=(11.0, 2.7 * len(usage) + 0.6), squeeze=False,
                                     width_ratios=[1.35, 1], layout="constrained")
    for (by_index, by_rank), level in zip(axes_grid, usage.values()):
        shares = level.counts / max(level.vectors, 1)
        used = np.flatnonzero(level.counts)
        if level.codebook_size > 256:  # bars would be narrower than a pixel: draw each used code as a line
            by_index.vlines(used, 0, shares[used], color="C0", linewidth=1.2)
        else:
            by_index.bar(np.arange(level.codebook_size), shares, width=1.0, color="C0", linewidth=0)
        by_index.set_xlim(-0.5, level.codebook_size - 0.5)
        by_index.set_ylim(0, max(shares.max(), 1e-9) * 1.08)
        by_index.xaxis.set_major_locator(MaxNLocator(integer=True))
        by_index.yaxis.set_major_formatter(FuncFormatter(_percent))
        by_index.set_xlabel("code index")
        by_index.set_ylabel("share of vectors")
        by_index.set_title(f"{level.level}: perplexity {level.perplexity:.1f}, {level.codes_used} of "
                           f"{level.codebook_size} codes used ({level.vectors:,} vectors)", fontsize=10, loc="left")

        ranked = np.sort(shares[used])[::-1]
        by_rank.bar(np.arange(1, len(ranked) + 1), ranked, width=0.9 if len(ranked) <= 40 else 1.0, color="C1",
                    linewidth=0)
        by_rank.axhline(1 / level.codebook_size, color="0.3", linestyle="--", linewidth=1)
        by_rank.set_yscale("log")
        low = min(float(ranked.min()) if len(ranked) else 1.0, 1 / level.codebook_size)
        by_rank.set_ylim(low / 2, 1.6)
        by_rank.set_xlim(0.4, max(len(ranked), 5) + 0.6)
        by_rank.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        by_rank.yaxis.set_major_formatter(FuncFormatter(_percent))
        unused = level.codebook_size - level.codes_used
        by_rank.set_xlabel("rank of the used codes" + (f" ({unused} unused codes not shown)" if unused else ""))
        by_rank.set_ylabel("share of vectors")
        by_rank.set_title(f"sorted by share; dashed: uniform use (1/{level.codebook_size})", fontsize=10, loc="left")
        for axes in (by_index, by_rank):
            axes.grid(axis="y", alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


def _pca_figure(codebook: dict[str, np.ndarray], title: str) -> "Figure":
    from matplotlib.ticker import MaxNLocator

    from .models.codebook_usage import codebook_pca

    plt = _pyplot()
    figure, axes_row = plt.subplots(1, len(codebook), figsize=(4.3 * len(codebook) + 0.8, 4.4), squeeze=False,
                                    layout="constrained")
    points = None
    norms = {level: np.linalg.norm(entries, axis=1) for level, entries in codebook.items()}
    low = min(float(value.min()) for value in norms.values())
    high = max(float(value.max()) for value in norms.values())
    for axes, (level, entries) in zip(axes_row[0], codebook.items()):
        coordinates, explained = codebook_pca(entries)
        points = axes.scatter(coordinates[:, 0], coordinates[:, 1], c=norms[level], cmap="viridis", s=9,
                              vmin=low, vmax=high, linewidths=0)
        axes.set_title(f"{level}: {entries.shape[0]} codes × {entries.shape[1]} dims\n"
                       f"PC 1-2 hold {explained:.0%} of the variance", fontsize=10)
        axes.xaxis.set_major_locator(MaxNLocator(5))
        axes.set_xlabel("principal component 1")
        axes.set_ylabel("principal component 2")
        axes.grid(alpha=0.3)
    figure.colorbar(points, ax=list(axes_row[0]), label="entry norm (L2)", aspect=25, pad=0.01)
    if title:
        figure.suptitle(title)
    return figure


def codebook_png(usage: dict[str, LevelUsage] | None, path: str | Path, *,
                 codebook: dict[str, np.ndarray] | None = None, title: str = "", force: bool = False) -> Path:
    """Codebook usage (or, without usage, the codebook entries) as a PNG; see `codebook_figure`."""
    return save_png(codebook_figure(usage, codebook=codebook, title=title), path, force=force)
