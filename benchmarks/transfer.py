"""Transfer speed: seconds of audio transferred per second of wall time (× real time) for a 3-minute song, with the
paper's ESTM-2 (d = 24, K = 1 024; untrained weights: speed does not depend on them), on the CPU and on CUDA when
present.

    python benchmarks/transfer.py [--minutes 3] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from estm_core import model_file
from estm_core.models.estm import ESTM2
from estm_core.transfer import transfer_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    rate = 22050
    rng = np.random.default_rng(0)
    t = np.arange(int(args.minutes * 60 * rate)) / rate
    content = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    emotion = (0.3 * np.sin(2 * np.pi * 330 * t[: 30 * rate])).astype(np.float32)
    info = model_file.ModelInfo(family="estm2", config={}, audio=model_file.AudioSettings(rate, 222264))
    print(f"{args.minutes:g} min of audio; torch threads {torch.get_num_threads()}")
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        model = model_file.LoadedModel("bench", ESTM2(d=24).to(device).eval(), info)
        transfer_audio(model, content[: 30 * rate], emotion, batch_size=args.batch_size)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        transfer_audio(model, content, emotion, batch_size=args.batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        print(f"{device:>5}: {elapsed:6.2f} s -> {len(content) / rate / elapsed:6.1f}x real time")


if __name__ == "__main__":
    main()
