"""Import the original ESTM project's Keras 2 `.h5` models into the model store (`estm models import`): each file read
and converted (keras_h5.py), checked for a collapsed output, and saved with its training history where one lies
beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from . import model_file, store
from .errors import EstmError, FileError
from .keras_h5 import HIERARCHY_FAMILIES, Imported, read_keras

SAMPLE_RATE = 22050  # every original model's rate (librosa's default)
SEGMENT_LENGTH = 222264  # 10.08 s, the original's segment
TRAIN_VARIANCE = 0.0438  # the variance of the original's DEAM training audio: the scale of its losses and of MSE_C
HISTORY_COLUMNS = {"reconstruction_loss": "reconstruction", "vqvae_loss": "vq"}  # Keras' names -> estm's

# A model is collapsed when its reconstruction of `test_signal()` has less than this fraction of the signal's RMS.
# The reference files gave 0.85 (estm2_0.75_20_1.0), 0.87 (ESTM-1 estm_model_2023_03_21_v10), 0.89
# (estm2_0.25_24_0.75) and 0.91 (HVQ-VAE hvqvae_model_2023_03_24_v0), and 0.0006 for the collapsed
# estm2_1.25_20_0.5: the line sits 8x below the weakest working model and 160x above the collapsed one.
COLLAPSED_LEVEL = 0.1


# ------------------------------------------------------------------------------------------------- collapse


def test_signal(length: int = SEGMENT_LENGTH, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A deterministic stand-in for music, (length,) float32 peaking at 1 like the original's segments: a bass line
    and chords of plucked harmonic tones, a chord every half second, C Am F G."""
    progression = ((48, 60, 64, 67), (45, 57, 60, 64), (41, 57, 60, 65), (43, 55, 59, 62))  # MIDI notes
    beat, ring = round(0.5 * sample_rate), round(2.0 * sample_rate)  # a note rings 2 s, to exp(-8) of its start
    since = np.arange(ring) / sample_rate
    envelope = np.exp(-4.0 * since) * np.minimum(since / 0.005, 1.0)  # a 5 ms attack, then the decay
    chords = []
    for notes in progression:
        frequencies = 440.0 * 2.0 ** ((np.array(notes) - 69) / 12)
        partials = (frequencies[:, None] * np.arange(1, 7)).ravel()  # six harmonics, falling as 1/h
        weights = np.tile(1.0 / np.arange(1, 7), len(notes)) * (partials < sample_rate / 2)
        chords.append(envelope * (weights @ np.sin(2 * np.pi * partials[:, None] * since)))
    signal = np.zeros(length + ring)
    for index, start in enumerate(range(0, length, beat)):
        signal[start:start + ring] += chords[(index // 4) % len(chords)]
    signal = signal[:length]
    return (signal / np.abs(signal).max()).astype(np.float32)


def output_level(model, signal: np.ndarray | None = None) -> float:
    """RMS of a transfer model's reconstruction of `signal` (default `test_signal()`) over the signal's RMS: near 1
    for a model that reconstructs, near 0 for one whose output collapsed to silence. ESTM-1 is given Q1."""
    import torch

    signal = test_signal() if signal is None else signal
    audio = torch.from_numpy(np.asarray(signal, dtype=np.float32))[None]
    emotion = torch.zeros(1, dtype=torch.long) if model.family == "estm1" else None
    with torch.no_grad():
        output = model.eval()(audio, emotion)["output"]
    return float(output.square().mean().sqrt() / audio.square().mean().sqrt())


def collapsed(model, signal: np.ndarray | None = None, level: float = COLLAPSED_LEVEL) -> bool:
    """Whether a transfer model's output is near-silent: `output_level` below `level`."""
    return output_level(model, signal) < level


# ------------------------------------------------------------------------------------------ into the store


def _metadata(imported: Imported, is_collapsed: bool | None,
              epochs: int | None) -> tuple[model_file.AudioSettings, model_file.TrainingSummary]:
    """(audio settings, training summary) of an imported model, as the store keeps them."""
    features = None
    if imported.family == "mer":
        from dataclasses import asdict

        from .features import FeatureSettings

        features = asdict(FeatureSettings())
    return (model_file.AudioSettings(SAMPLE_RATE, SEGMENT_LENGTH, features=features),
            model_file.TrainingSummary(train_variance=TRAIN_VARIANCE, status="imported", source=imported.provenance,
                                       collapsed=is_collapsed, epochs_run=epochs))


def history_file(path: str | Path) -> Path | None:
    """The original's training history beside a model file, if there is one: `PREFIX_history_TAIL.csv`, where the
    model is `PREFIX_TAIL.h5` or `PREFIX_model_TAIL.h5` (estm2_history_0.25_24_0.75.csv for estm2_0.25_24_0.75.h5,
    hier_history_2023_03_24_v0.csv for hvqvae_model_2023_03_24_v0.h5)."""
    path = Path(path)
    prefix, _, tail = path.stem.partition("_")
    tail = tail.removeprefix("model_")
    if not tail:
        return None
    candidates = sorted(path.parent.glob(f"*_history_{tail}.csv"))
    own = [candidate for candidate in candidates if candidate.name.startswith(f"{prefix}_history_")]
    if own:
        return own[0]
    return candidates[0] if len(candidates) == 1 else None


def read_history(path: str | Path):
    """The original's history CSV (Keras' per-epoch logs, epochs counted from 0 in an unnamed or `epoch` column)
    as estm's: `epoch` from 1 first, `reconstruction` and `vq` for Keras' loss names, every other column kept."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise FileError(path, f"the training history beside the model cannot be read ({error}); move it away to "
                              "import the model without it") from None
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if first == "epoch" or first.startswith("Unnamed"):
        epochs = pd.to_numeric(frame.pop(frame.columns[0]), errors="coerce") + 1  # Keras counts epochs from 0
    else:
        epochs = pd.Series(range(1, len(frame) + 1))
    frame = frame.rename(columns=HISTORY_COLUMNS)
    if "loss" not in frame.columns or epochs.isna().any():
        raise FileError(path, "the training history beside the model has no loss column or a bad epoch column; "
                              "move it away to import the model without it")
    frame.insert(0, "epoch", epochs.astype(int).to_numpy())
    return frame


def import_file(path: str | Path, name: str | None = None, *, force: bool = False) -> tuple[Path, str]:
    """Import one original `.h5` model into the store as `name` (default: the file's stem), with its history CSV if
    one lies beside it. -> (the store's model file, "ok" or "collapsed"). Refusals raise EstmError (one line)."""
    from .files import write_csv

    path = Path(path)
    name = store.check_name(name or path.stem)
    imported = read_keras(path)
    source_history = history_file(path)
    history = None if source_history is None else read_history(source_history)
    is_collapsed = collapsed(imported.model) if imported.family in HIERARCHY_FAMILIES else None
    audio, training = _metadata(imported, is_collapsed, None if history is None else len(history))
    target = store.model_path(imported.family, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    model_file.save_model(imported.model, target, labels=imported.labels, audio=audio, training=training, force=force)
    history_target = store.history_path(target)
    if history is not None:
        write_csv(history, history_target, force=True)  # the model's own write already refused to overwrite
    else:
        history_target.unlink(missing_ok=True)  # a replaced model's history is not this one's
    return target, "collapsed" if is_collapsed else "ok"


def import_paths(paths, *, force: bool = False, on_file: Callable[[dict], None] | None = None) -> list[dict]:
    """Import files and folders (every `*.h5` in a folder), each under its stem. One row per file, in order:
    {file, name, family, status ("ok", "collapsed" or "refused"), model (the store's file), cause (why it was
    refused, without the file's name)}; a refused file does not stop the rest. `on_file(row)` reports each as it is done."""
    rows = []
    for path in _expand(paths):
        row = {"file": str(path), "name": path.stem, "family": None, "status": "refused", "model": None, "cause": ""}
        if not path.exists():
            row["cause"] = "no such file or folder"
        elif path.is_dir():
            row["cause"] = "a folder without .h5 files"
        else:
            try:
                target, status = import_file(path, force=force)
                row.update(family=target.parent.name, status=status, model=str(target))
            except FileError as error:
                row["cause"] = error.cause
            except EstmError as error:
                row["cause"] = str(error)
        rows.append(row)
        if on_file:
            on_file(row)
    return rows


def _expand(paths) -> list[Path]:
    """Files as given; a folder as its `.h5` files by name (hidden ones and macOS debris skipped), or itself when it
    has none."""
    from .finding import files_in

    found = []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if path.is_dir():
            found += files_in(path, {".h5"}, recursive=False) or [path]
        else:
            found.append(path)
    return found
