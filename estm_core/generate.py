"""Generation with a trained WaveNet: many streams at once through the fast incremental model, each with its own
label and, for a model conditioned on cue curves, its own curves (sketch.py: a quadrant's or a reference's);
temperature sampling, optional priming audio; reproducible per seed."""

from __future__ import annotations

import math

import numpy as np
import torch

from . import audio, features, model_file
from .cues.curves import measure_coded
from .errors import EstmError
from .models.wavenet import FastWaveNet


def label_indices(info: model_file.ModelInfo, labels: list[str | None]) -> torch.Tensor | None:
    """Stream labels -> indices of the model's labels; None for an unconditioned model (which then refuses labels)."""
    if not info.labels:
        if any(label is not None for label in labels):
            raise EstmError("this wavenet was trained without labels; generate without --emotion/--genre/--label")
        return None
    lowered = [known.lower() for known in info.labels]
    indices = []
    for label in labels:
        if label is None:
            raise EstmError(f"this wavenet is conditioned: choose a label ({', '.join(info.labels)})")
        if label.lower() not in lowered:
            raise EstmError(f"unknown label {label!r}; this model knows {', '.join(info.labels)}")
        indices.append(lowered.index(label.lower()))
    return torch.tensor(indices)


MAX_SAMPLES = 1 << 26  # samples generated in one run, all streams together: about 1 GB held (codes and audio)
MAX_STREAMS = 1024  # streams at once: each holds every layer's queue of past activations


def check_size(streams: int, seconds: float, sample_rate: int) -> int:
    """The samples per stream that `streams` streams of `seconds` at `sample_rate` make; an EstmError, before any
    work, where that is none or more than MAX_SAMPLES in all (or more than MAX_STREAMS streams)."""
    if not 1 <= streams <= MAX_STREAMS:
        raise EstmError(f"streams must be from 1 to {MAX_STREAMS} (got {streams})")
    if not (math.isfinite(seconds) and seconds > 0):
        raise EstmError(f"--seconds must be a positive number (got {seconds})")
    total = round(seconds * sample_rate)
    if total < 1:
        raise EstmError(f"--seconds {seconds:g} is not one sample at {sample_rate} Hz")
    if streams * total > MAX_SAMPLES:
        most = MAX_SAMPLES // streams / sample_rate
        raise EstmError(f"--seconds {seconds:g} with {streams} stream(s) is {streams * total:,} samples at "
                        f"{sample_rate} Hz, more than the {MAX_SAMPLES:,} one run holds (about 1 GB): at most "
                        f"{most:.0f} s per stream at this count")
    return total


def takes_curves(info: model_file.ModelInfo) -> bool:
    """Whether the model is conditioned on cue curves."""
    return bool(info.config.get("curves"))


def asked_curves(info: model_file.ModelInfo, quadrants: list[str | None], *, seconds: float | None = None,
                 like=None, seed: int = 0) -> list[np.ndarray]:
    """One (frames, channels) array of cue curves per stream: the reference file `like`'s (moved toward the stream's
    quadrant where it has one), or a sketch of the stream's quadrant (seeded by seed + the stream's number)."""
    from .sketch import quadrant_curves, reference_curves

    if like is not None:
        moved = {quadrant: reference_curves(like, seconds, quadrant) for quadrant in set(quadrants)}
        return [moved[quadrant] for quadrant in quadrants]
    if any(quadrant is None for quadrant in quadrants):
        raise EstmError("this wavenet is conditioned on cue curves: ask for an emotion (--emotion Q1..Q4) or give "
                        "a reference (--like FILE)")
    middle = info.training.middle or {}
    if not {"level_db", "register_midi", "onset_rate"} <= set(middle):
        raise EstmError("the model file does not say what its training audio's cues were (training.middle): "
                        "train it again")
    return [quadrant_curves(quadrant, middle, seconds or 4.0, seed + number)
            for number, quadrant in enumerate(quadrants)]


@torch.no_grad()
def generate(wavenet: model_file.LoadedModel, labels: list[str | None], *, seconds: float = 4.0,
             temperature: float = 0.9, seed: int = 0, prime: np.ndarray | None = None,
             curves: list[np.ndarray] | None = None, on_progress=None) -> np.ndarray:
    """(streams, samples) float32 audio at the model's rate; one stream per entry of `labels` (None each for a model
    without labels), and for a model conditioned on cue curves, per entry of `curves` (asked_curves).

    `prime` (mono audio at the model's rate) is fed first, teacher-forced, in every stream; generation continues it.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise EstmError("--temperature must be above 0")
    model, info, device = wavenet.model, wavenet.info, wavenet.device
    streams = len(labels)
    total = check_size(streams, seconds, info.audio.sample_rate)  # before anything is allocated
    if prime is not None and curves is not None:  # the prime's own curves first, whole frames of it
        prime = prime[len(prime) % model.hop:]
        if len(prime):
            curves = [np.concatenate([measure_coded(prime), stream]) for stream in curves]
    local = None if curves is None else torch.from_numpy(np.stack(curves)).transpose(1, 2).to(device)
    fast = FastWaveNet(model, streams, label_indices(info, labels).to(device) if info.labels else None, local)
    sample = Sampler(temperature, torch.Generator(device=device).manual_seed(seed))
    codes = torch.full((streams,), model.classes // 2, dtype=torch.long, device=device)  # silence
    if prime is not None and len(prime):
        primed = features.mu_law_encode(torch.from_numpy(prime)).to(device)
        for code in primed[:-1]:
            fast.step(code.expand(streams))
        codes = primed[-1].expand(streams).clone()
    output = torch.empty(streams, total, dtype=torch.long, device=device)
    for index in range(total):
        codes = sample(fast.step(codes))
        output[:, index] = codes
        if on_progress and (index + 1) % 1000 == 0:
            on_progress(index + 1, total)
    if on_progress:
        on_progress(total, total)
    return features.mu_law_decode(output.cpu()).numpy()


class Sampler:
    """Draws (B,) codes from softmax(logits / temperature) for (B, classes) logits, by the Gumbel-max trick:
    argmax(logits + temperature * g) with g = -log(-log(u)) has exactly that distribution. The noise is drawn for
    many steps at once, so that a step costs two operations; this matters once per sample per stream."""

    ELEMENTS = 1 << 22  # noise drawn at once, in values (16 MB)

    def __init__(self, temperature: float, generator: torch.Generator):
        self.temperature = temperature
        self.generator = generator
        self.noise = torch.empty(0)
        self.used = 0

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.used == len(self.noise):
            steps = max(1, self.ELEMENTS // logits.numel())
            uniform = torch.rand((steps, *logits.shape), generator=self.generator, device=logits.device)
            self.noise = uniform.clamp_min_(1e-20).log_().neg_().log_().neg_()
            self.used = 0
        self.used += 1
        return torch.add(logits.float(), self.noise[self.used - 1], alpha=self.temperature).argmax(dim=1)


def load_prime(path, sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """The last `seconds` of a priming file at the model's rate (one line naming the file if it is unusable)."""
    samples, _ = audio.load(path, sample_rate=sample_rate, mono=True)
    return samples[-round(seconds * sample_rate):]
