"""Classify throughput: seconds of audio classified per second of wall time (× real time), for the paper's MER model
(untrained weights: speed does not depend on them), on the CPU and on CUDA when present.

    python benchmarks/classify.py [AUDIO_FILE] [--minutes 3] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from estm_core import audio, model_file, store
from estm_core.classify import classify_file, load_classifiers
from estm_core.models.mer import MER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_file", nargs="?", help="a file to classify (default: generated noise-and-tones)")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the generated audio")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp())
    os.environ["ESTM_HOME"] = str(work / "home")
    path = Path(args.audio_file) if args.audio_file else work / "bench.flac"
    if not args.audio_file:
        rng = np.random.default_rng(0)
        t = np.arange(int(args.minutes * 60 * 44100)) / 44100
        music = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.01 * np.sin(t))) + 0.05 * rng.standard_normal(len(t))
        audio.save(path, np.stack([music, music], axis=1).astype(np.float32), 44100)
    seconds = audio.probe(path).duration
    model_file.save_model(MER(), store.model_path("mer", "bench"), labels=["Q1", "Q2", "Q3", "Q4"],
                          audio={"sample_rate": 22050, "segment_length": 222264,
                            "features": {"n_fft": 1024, "hop_length": 512, "n_mels": 128, "standardize": True}})
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{path.name}: {seconds / 60:.1f} min; torch threads {torch.get_num_threads()}")
    for device in devices:
        classifiers = load_classifiers(["mer"], device=device)
        classify_file(path, classifiers, batch_size=args.batch_size)  # warm-up
        started = time.perf_counter()
        result = classify_file(path, classifiers, batch_size=args.batch_size)
        elapsed = time.perf_counter() - started
        segments = result.decisions["mer"]["segments"]
        print(f"{device:>5}: {elapsed:6.2f} s for {segments} segments -> {seconds / elapsed:7.1f}x real time")


if __name__ == "__main__":
    main()
