"""Evaluation of trained models against held-out data: a classifier's metrics (accuracy, macro-F1, per-class
precision and recall, the confusion matrix, per segment and per song), a learned transfer model's metrics of the
ESTM paper on segment pairs (MSE_C, PEA, AEA, CD, and the distance to a true target), and a WaveNet's held-out
likelihood. The judged transfer of whole files, for methods and models alike, is transfer_evaluation's, the judged
generation generation_evaluation's; every evaluation's report files are written here (write_classifier_report,
write_transfer_report, write_generation_report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import store
from .dsp import hann
from .errors import EstmError, FileError
from .files import atomic_write, write_csv
from .model_file import LoadedModel
from .report import write_json


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
    from .classify import predict_segments  # torch: imported here, so that reading an evaluation stays light
    from .datasets.cache import SegmentDataset

    classifier = store.load_model(store.resolve(model_name), device=device)
    info = classifier.info
    label_column = info.training.label_column
    dataset = SegmentDataset(cache_dir, part, label_column=label_column, labels=info.labels)
    probabilities = predict_segments(classifier, dataset, batch_size=batch_size, on_progress=on_progress)
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
        "model": classifier.name,
        "family": info.family,
        "data": str(Path(cache_dir).resolve()),
        "part": part,
        "chance": float(np.bincount(truth, minlength=len(info.labels)).max() / len(truth)),
        **classification_metrics(truth, probabilities.argmax(axis=1), info.labels),
        "songs": {"accuracy": song_metrics["accuracy"], "macro_f1": song_metrics["macro_f1"],
                  "count": song_metrics["count"]},
    }
    return summary, predictions


def classifier_report_files(out_dir: str | Path) -> list[Path]:
    return [Path(out_dir) / name for name in ("evaluation.json", "confusion.csv", "confusion.png", "predictions.csv")]


def write_classifier_report(summary: dict, predictions: pd.DataFrame, out_dir: str | Path,
                            force: bool = False) -> list[Path]:
    """evaluation.json, confusion.csv, confusion.png and predictions.csv in `out_dir`."""
    from .plots import confusion_png

    out_dir = Path(out_dir)
    labels = summary["labels"]
    confusion = pd.DataFrame(summary["confusion"], index=pd.Index(labels, name="truth \\ predicted"), columns=labels)
    written = classifier_report_files(out_dir)
    write_json(summary, written[0], force)
    with atomic_write(written[1], force) as temporary:
        confusion.to_csv(temporary)
    confusion_png(np.array(summary["confusion"]), labels, written[2],
                  title=f"{summary['model']} on {summary['part']}: accuracy {summary['accuracy']:.1%}", force=force)
    write_csv(predictions, written[3], force)
    return written


def read_evaluation(path: str | Path) -> dict:
    """The summary JSON of `estm evaluate classifier` (evaluation.json), checked to hold a confusion matrix."""
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "is a folder, not an evaluation file" if path.is_dir() else "no such file")
    try:
        summary = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileError(path, f"not a JSON file ({error})") from None
    if not isinstance(summary, dict) or not {"confusion", "labels"} <= set(summary):
        raise FileError(path, "not a classifier evaluation: no 'confusion' and 'labels' "
                              "(`estm evaluate classifier` writes one)")
    labels, confusion = summary["labels"], np.asarray(summary["confusion"])
    if confusion.shape != (len(labels), len(labels)) or not np.issubdtype(confusion.dtype, np.number):
        raise FileError(path, f"its confusion matrix is not {len(labels)} x {len(labels)} numbers, one row and "
                              "column per label")
    return summary


# ------------------------------------------------------------------------------------------------ transfer


def log_spectral_distance(estimate: np.ndarray, reference: np.ndarray, n_fft: int = 1024, hop: int = 256) -> float:
    """Mean over frames of the RMS difference of the two log power spectra, in dB (0 for identical signals)."""
    window = hann(n_fft, periodic=False)

    def log_power(signal: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(signal, (0, n_fft)), n_fft)[::hop] * window
        return 10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-10)

    return float(np.mean(np.sqrt(np.mean((log_power(estimate) - log_power(reference)) ** 2, axis=1))))


def evaluate_transfer(model_name: str, pairs: pd.DataFrame, cache_dir: str | Path, judge_name: str, *,
                      device="cpu", batch_size: int = 8, on_progress=None) -> tuple[dict, pd.DataFrame]:
    """The paper's metrics over a pairs table: MSE_C, PEA, AEA (where the emotion segment's true quadrant is
    known), CD (x 1e5, on the content_dev rows) and, where the pairs name a true target (SynthEmo), the
    log-spectral distance to it, beside the content's own distance to it (what doing nothing scores).

    The judge is a mer model that must differ from the one whose labels trained the transfer model.
    """
    from .datasets.segment import check_fits, open_cache, read_manifest
    from .transfer import load_transfer_model

    transfer = load_transfer_model(model_name, device)
    classifier = _independent_judge(transfer, judge_name, device)
    for model in (transfer, classifier):
        check_fits(cache_dir, model)
    manifest = read_manifest(cache_dir).set_index("segment_id")
    cache = open_cache(cache_dir)
    table = pd.DataFrame(_pair_rows(transfer, classifier, pairs, cache_dir, cache, manifest, batch_size, on_progress))
    table["pea"] = (table["output_emotion"] == table["style_emotion"]).astype(int)
    known = table["style_truth"].notna()
    table["aea"] = np.where(known, table["output_emotion"] == table["style_truth"], np.nan)

    deviations = _content_deviations(transfer, pairs, cache, manifest)
    summary = {
        "model": transfer.name, "family": transfer.family, "judge": classifier.name,
        "style_labeller": transfer.info.training.style_labeller,
        "pairs": len(table), "mse_c": float(table["mse_c"].mean()), "pea": float(table["pea"].mean()),
        "aea": float(table.loc[known, "aea"].mean()) if known.any() else None,
        "cd_x1e5": float(np.mean(deviations) * 1e5) if deviations else None,
        "output_keeps_content_emotion": float((table["output_emotion"] == table["content_emotion"]).mean()),
        "chance": 0.25,
    }
    if "lsd_target" in table.columns:
        summary["lsd_target_db"] = float(table["lsd_target"].mean())
        summary["lsd_content_target_db"] = float(table["lsd_content_target"].mean())
    return summary, table


def _pair_rows(transfer: LoadedModel, classifier: LoadedModel, pairs: pd.DataFrame, cache_dir, cache,
               manifest: pd.DataFrame, batch_size: int, on_progress) -> list[dict]:
    """One row per pair of evaluate_transfer: MSE_C, the judge's quadrant for the output, the reference ("style")
    and the content, the reference's true quadrant, and where the pairs name a target, the log-spectral distances."""
    from .classify import segment_probabilities
    from .datasets.segment import to_float
    from .labels import QUADRANTS
    from .transfer import pair_outputs

    judge_labels = classifier.info.labels
    variance = transfer.info.training.train_variance

    def judged(waveforms: list[np.ndarray]) -> list[str]:
        probabilities = segment_probabilities(classifier, np.stack(waveforms))
        return [judge_labels[i] for i in probabilities.argmax(dim=1).tolist()]

    rows, batch = [], []

    def score(batch: list[tuple]) -> None:
        indices, contents, references, outputs = zip(*batch)
        for index, content, output, out_label, style_label, content_label in zip(
                indices, contents, outputs, judged(outputs), judged(references), judged(contents)):
            pair = pairs.iloc[index]
            truth = manifest.loc[pair["style"], "label"]
            row = {"content": pair["content"], "style": pair["style"],
                   "mse_c": float(np.mean((content - output) ** 2) / variance),
                   "output_emotion": out_label, "style_emotion": style_label, "content_emotion": content_label,
                   "style_truth": truth if truth in QUADRANTS.labels else None}
            if "target" in pairs.columns:
                target = to_float(cache[manifest.loc[pair["target"], "index"]])
                row["lsd_target"] = log_spectral_distance(output, target)
                row["lsd_content_target"] = log_spectral_distance(content, target)
            rows.append(row)

    for item in pair_outputs(transfer, pairs, cache_dir, batch_size=batch_size, on_progress=on_progress):
        batch.append(item)
        if len(batch) == batch_size:
            score(batch)
            batch = []
    if batch:
        score(batch)
    return rows


def _independent_judge(transfer: LoadedModel, judge_name: str, device) -> LoadedModel:
    """The mer judge, refused if it made the transfer model's training labels (a model must not pass by fitting its
    own teacher)."""
    judge_path = store.find_model("mer", judge_name)
    if transfer.info.training.style_labeller == store.model_name(judge_path):
        raise EstmError(f"the judge {store.model_name(judge_path)} made {transfer.name}'s training labels; judge "
                        "with another mer model, so that a model cannot pass by fitting its own teacher")
    return store.load_model(judge_path, "mer", device)


def _content_deviations(transfer: LoadedModel, pairs: pd.DataFrame, cache, manifest: pd.DataFrame) -> list[float]:
    """CD's terms: each content_dev pair's content decoded with each of the four quadrants, the outputs' variance."""
    import torch

    from .datasets.segment import to_float
    from .labels import QUADRANTS
    from .transfer import decode_segments, quadrant_one_hot

    emotions = torch.stack([quadrant_one_hot(label) for label in QUADRANTS.labels])
    deviations = []
    for pair in pairs[pairs["content_dev"] == 1].itertuples(index=False):
        content = torch.from_numpy(to_float(cache[manifest.loc[pair.content, "index"]]))
        outputs = decode_segments(transfer, content[None].expand(len(QUADRANTS), -1), emotions).cpu().numpy()
        deviations.append(float(np.mean((outputs - outputs.mean(axis=0)) ** 2)))
    return deviations


# ------------------------------------------------------------------------------------------------- wavenet


def transfer_report_files(out_dir: str | Path, *, judged: bool = True) -> list[Path]:
    """A transfer evaluation's files in `out_dir`: evaluation.json and pairs.csv, and for a judged transfer
    (transfer_evaluation.evaluate) example.png."""
    names = ["evaluation.json", "pairs.csv"] + (["example.png"] if judged else [])
    return [Path(out_dir) / name for name in names]


def write_transfer_report(summary: dict, pairs: pd.DataFrame, out_dir: str | Path, *, methods: dict | None = None,
                          force: bool = False) -> list[Path]:
    """evaluation.json (NaN as null) and pairs.csv in `out_dir`, for evaluate_transfer's metrics or a judged transfer;
    given the judged transfer's `methods`, also example.png (one pair as each method transfers it)."""
    written = transfer_report_files(out_dir, judged=methods is not None)
    write_json(summary, written[0], force)
    write_csv(pairs, written[1], force)
    if methods is not None:
        from .transfer_evaluation import example_png

        example_png(methods, pairs, written[2], force=force)
    return written


def evaluate_wavenet(model_name: str | None, *, seed: int = 0, device="cpu") -> dict:
    """Held-out NLL (nats per sample) and next-sample accuracy of a WaveNet on its own held-out audio (where its
    training cache is still in the store). What its generated music is heard as is generation_evaluation's."""
    from torch.utils.data import DataLoader

    from .datasets.mulaw import WindowDataset, built_cache, cache_folder, spans
    from .generate import takes_curves
    from .models.wavenet import wavenet_step
    from .steps import held_out_sums

    wavenet = store.load_model(store.find_model("wavenet", model_name), "wavenet", device)
    model, info = wavenet.model, wavenet.info
    summary = {"model": wavenet.name, "labels": info.labels, "curves": takes_curves(info)}
    cache = built_cache(cache_folder(info.training.data))
    if cache is not None:
        window = model.receptive_field + info.audio.output_length
        held_out = spans(cache.index, "validation", info.training.holdout)
        if (held_out["length"] >= window).any():
            windows = WindowDataset(cache, held_out, window, info.labels, windows=256, seed=seed,
                                    curves=takes_curves(info))
            terms = held_out_sums(model, wavenet_step(model.receptive_field),
                                  DataLoader(windows, batch_size=16)).means()
            summary.update({"held_out_nll": terms["loss"], "held_out_accuracy": terms["accuracy"]})
    return summary


def write_generation_report(summary: dict, clips: pd.DataFrame, out_dir: str | Path, *,
                            force: bool = False) -> list[Path]:
    """evaluation.json (NaN as null) and clips.csv in `out_dir`, for generation_evaluation's judged clips."""
    out_dir = Path(out_dir)
    written = [out_dir / "evaluation.json", out_dir / "clips.csv"]
    write_json(summary, written[0], force)
    write_csv(clips, written[1], force)
    return written


def rms_and_centroid(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """RMS level (dBFS) and spectral centroid (Hz) of a clip: the simple level and brightness the demo's corpus table
    shows (not the cue meter's loudness in LUFS and tilt)."""
    power = np.abs(np.fft.rfft(samples * hann(len(samples), periodic=False))) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / sample_rate)
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return 20 * np.log10(max(rms, 1e-10)), float((frequencies * power).sum() / max(power.sum(), 1e-20))

