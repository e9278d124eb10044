"""Recognition on the paired corpora: held-out works, cross-corpus, and real music without labels.

    .venv/bin/python benchmarks/recognition.py --folder runs/recognition [--count 200] [--epochs 12]
        [--real /usr/share/games/wesnoth/1.16/data/core/music]

Makes the scores corpus and SynthEmo (`--count` excerpts or contents each), splits each by work (content), trains on
each the paper's MER CNN (at a quarter of its width, for a CPU) and the GEMS-style emotion ResNet on the quadrants,
and prints accuracy and macro-F1 on the held-out part of its own corpus and on the other corpus (cross-corpus),
beside chance. With `--real`, every audio file there (no labels) is classified by each corpus's MER: how many
distinct quadrants it hears and its mean top probability. Each step is kept in FOLDER and skipped on a rerun; the
models go into FOLDER/home, not the user's store.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPORA = ("scores", "tones")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--real", type=Path)
    arguments = parser.parse_args()
    folder = arguments.folder.resolve()
    os.environ["ESTM_HOME"] = str(folder / "home")

    import pandas as pd

    from estm_core import store
    from estm_core.classify import classify_file, load_classifiers
    from estm_core.datasets import scores, synth
    from estm_core.datasets.layouts import read_dataset
    from estm_core.datasets.segment import SegmentSettings, segment_split
    from estm_core.datasets.split import split_table
    from estm_core.evaluate import evaluate_classifier
    from estm_core.training.classifier import train_classifier
    from estm_core.training.loop import TrainConfig

    for corpus in CORPORA:
        started = time.perf_counter()
        if corpus == "scores":
            scores.generate(folder / corpus, count=arguments.count, jobs=2)
        else:
            synth.generate(folder / corpus, contents=arguments.count)
        cache = folder / f"{corpus}-cache"
        if not (cache / "segments.json").exists():
            split = split_table(read_dataset(folder / corpus).table, test=0.2, validation=0.1, seed=0)
            segment_split(split, cache, SegmentSettings(), jobs=2)
        print(f"{corpus}: corpus and cache ready ({time.perf_counter() - started:.0f} s)", flush=True)

    models = {("mer", corpus): f"mer-{corpus}" for corpus in CORPORA}
    models |= {("gems", corpus): f"resnet-{corpus}" for corpus in CORPORA}
    for (family, corpus), name in models.items():
        if not store.model_path(family, name).exists():
            started = time.perf_counter()
            options = {"width": 0.25} if family == "mer" else {"widths": (8, 16, 32, 64)}
            config = TrainConfig(epochs=arguments.epochs, batch_size=16, lr=1e-3, seed=0, monitor="val_accuracy")
            train_classifier(family, folder / f"{corpus}-cache", name, config, model_options=options)
            print(f"trained {name} ({time.perf_counter() - started:.0f} s)", flush=True)

    rows = []
    for (family, trained_on), name in models.items():
        for tested_on in CORPORA:
            summary, _ = evaluate_classifier(name, folder / f"{tested_on}-cache", part="test")
            rows.append({"model": name, "trained on": trained_on, "tested on (held-out works)": tested_on,
                         "accuracy": round(summary["accuracy"], 3), "macro F1": round(summary["macro_f1"], 3),
                         "chance": summary["chance"], "segments": summary["count"]})
    print(pd.DataFrame(rows).to_string(index=False))

    if arguments.real is not None:
        from estm_core.finding import audio_files

        files = audio_files(arguments.real)
        rows = []
        for corpus in CORPORA:
            classifiers = load_classifiers(["mer"], {"mer": models[("mer", corpus)]})
            decisions = [classify_file(path, classifiers).decisions["mer"] for path in files]
            counts = pd.Series([decision["label"] for decision in decisions]).value_counts().sort_index()
            rows.append({"MER trained on": corpus, "files": len(files), "distinct quadrants": len(counts),
                         "per quadrant": " ".join(f"{label} {count}" for label, count in counts.items()),
                         "mean top probability": round(sum(d["probability"] for d in decisions) / len(files), 3)})
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
