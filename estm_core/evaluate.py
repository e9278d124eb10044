"""Evaluation of trained models against held-out data: the classifier metrics (accuracy, macro-F1, per-class precision
and recall, the confusion matrix), per segment and per song."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from . import store
from .classify import predict_segments
from .datasets.cache import SegmentDataset
from .files import atomic_write, write_csv


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: truth, columns:
    prediction) for integer class indices."""
    classes = len(labels)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    true_positive = np.diag(confusion).astype(float)
    predicted_count, actual_count = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted_count, out=np.zeros(classes), where=predicted_count > 0)
    recall = np.divide(true_positive, actual_count, out=np.zeros(classes), where=actual_count > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(classes), where=precision + recall > 0)
    present = actual_count > 0
    return {
        "accuracy": float(true_positive.sum() / max(len(truth), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(actual_count[i])}
            for i, label in enumerate(labels)
        },
        "confusion": confusion.tolist(),
        "labels": list(labels),
        "count": int(len(truth)),
    }


def evaluate_classifier(model_name: str, cache_dir: str | Path, *, part: str = "test", device="cpu",
                        batch_size: int = 32, on_progress=None) -> tuple[dict, pd.DataFrame]:
    """Classify every segment of `part` of a segment cache; returns (summary, per-segment predictions)."""
    path = store.resolve(model_name)
    model, info = store.load_model(path, device=device)
    label_column = info.training.get("label_column", "label")
    dataset = SegmentDataset(cache_dir, part, label_column=label_column, labels=info.labels)
    probabilities = predict_segments(model, info, dataset, batch_size=batch_size, on_progress=on_progress)
    truth = dataset.targets.numpy()

    predictions = dataset.manifest[["segment_id", "song_id", label_column]].copy()
    predictions["predicted"] = [info.labels[i] for i in probabilities.argmax(axis=1)]
    for i, label in enumerate(info.labels):
        predictions[f"p_{label}"] = probabilities[:, i]
    per_song = predictions.groupby("song_id")[[f"p_{label}" for label in info.labels]].mean()
    song_truth = predictions.groupby("song_id")[label_column].first().loc[per_song.index]
    song_metrics = classification_metrics(
        np.array([info.labels.index(label) for label in song_truth]), per_song.to_numpy().argmax(axis=1), info.labels
    )
    summary = {
        "model": path.name.removesuffix(store.MODEL_SUFFIX),
        "family": info.family,
        "data": str(Path(cache_dir).resolve()),
        "part": part,
        "chance": float(np.bincount(truth, minlength=len(info.labels)).max() / len(truth)),
        **classification_metrics(truth, probabilities.argmax(axis=1), info.labels),
        "songs": {"accuracy": song_metrics["accuracy"], "macro_f1": song_metrics["macro_f1"],
                  "count": song_metrics["count"]},
    }
    return summary, predictions


def write_classifier_report(summary: dict, predictions: pd.DataFrame, out_dir: str | Path,
                            force: bool = False) -> list[Path]:
    """evaluation.json, confusion.csv, confusion.png and predictions.csv in `out_dir`."""
    from .plots import confusion_png

    out_dir = Path(out_dir)
    labels = summary["labels"]
    confusion = pd.DataFrame(summary["confusion"], index=pd.Index(labels, name="truth \\ predicted"), columns=labels)
    written = [out_dir / name for name in ("evaluation.json", "confusion.csv", "confusion.png", "predictions.csv")]
    with atomic_write(written[0], force) as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    with atomic_write(written[1], force) as temporary:
        confusion.to_csv(temporary)
    confusion_png(np.array(summary["confusion"]), labels, written[2],
                  title=f"{summary['model']} on {summary['part']}: accuracy {summary['accuracy']:.1%}", force=force)
    write_csv(predictions, written[3], force)
    return written
