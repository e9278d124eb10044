"""WaveNet generation speed: samples/s of the naive path (the whole receptive field recomputed for every sample) and
of the fast incremental path, at batch 1, 16 and 64, for the seed preset (3 x 10 layers, receptive field 3 070), on
the CPU and on CUDA when present; and of the fast path of the same model conditioned on cue curves. Prints the
ratios. Targets: fast >= 100x naive; >= 3 000 samples/s single-stream and >= 20 000 aggregate at batch 64 on a 2-core
CPU; real time (16 000/s) single-stream on an H100; with curves within 20 % of without (ratio >= 0.8).

    python benchmarks/generate.py [--preset seed] [--seconds 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from estm_core.cues.curves import CHANNELS
from estm_core.generate import Sampler
from estm_core.models.wavenet import PRESETS, FastWaveNet, WaveNet


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def naive_rate(model: WaveNet, batch: int, samples: int, device: str) -> float:
    codes = torch.full((batch, model.receptive_field), 128, dtype=torch.long, device=device)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(samples):
        logits = model(codes[:, -model.receptive_field:])[:, :, -1]
        codes = torch.cat([codes[:, 1:], logits.argmax(dim=1, keepdim=True)], dim=1)
    synchronize(device)
    return batch * samples / (time.perf_counter() - started)


@torch.no_grad()
def fast_rate(model: WaveNet, batch: int, samples: int, device: str) -> tuple[float, str]:
    curves = None
    if model.curve_projection is not None:  # a new frame of random curves every `hop` samples
        curves = torch.randn(batch, model.curve_projection.in_channels, samples // model.hop + 2, device=device)
    fast = FastWaveNet(model, batch, curves=curves)
    codes = torch.full((batch,), 128, dtype=torch.long, device=device)
    for _ in range(50):  # warm-up
        codes = fast.step(codes).argmax(dim=1)
    synchronize(device)
    started = time.perf_counter()
    sample = Sampler(0.9, torch.Generator(device=device).manual_seed(0))
    for _ in range(samples):
        codes = sample(fast.step(codes))
    synchronize(device)
    engine = fast.engine + (f" ({fast.fallback})" if fast.fallback else "")  # and why not a faster one
    return batch * samples / (time.perf_counter() - started), engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    parser.add_argument("--seconds", type=float, default=1.0, help="audio generated per fast measurement")
    args = parser.parse_args()
    print(f"preset {args.preset}; torch threads {torch.get_num_threads()}")
    print(f"{'device':>6} {'batch':>5} {'naive/s':>10} {'fast/s':>10} {'fast/naive':>10} {'x real time':>11} "
          f"{'curves/s':>10} {'curves/fast':>11}  fast path")
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        torch.manual_seed(0)
        model = WaveNet(**PRESETS[args.preset]).to(device).eval()
        on_curves = WaveNet(**PRESETS[args.preset], curves=len(CHANNELS)).to(device).eval()
        for batch in (1, 16, 64):
            naive = naive_rate(model, batch, (20 if batch == 1 else 3) if device == "cpu" else 100, device)
            samples = int(args.seconds * 16000 / max(1, batch // 16))
            fast, engine = fast_rate(model, batch, samples, device)
            curves, _ = fast_rate(on_curves, batch, samples, device)
            print(f"{device:>6} {batch:>5} {naive:>10.0f} {fast:>10.0f} {fast / naive:>10.1f} "
                  f"{fast / batch / 16000:>11.3f} {curves:>10.0f} {curves / fast:>11.2f}  {engine}")


if __name__ == "__main__":
    main()
