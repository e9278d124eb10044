"""Features in torch, on any device: log-mel spectrograms (the MER settings of the ESTM paper) and mu-law.

The formulas follow librosa's defaults, which the original systems used: Slaney mel scale with Slaney area
normalisation, a centred Hann STFT, power 2, then 10·log10 referenced to the clip's maximum and floored at top_db.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import torch

from . import dsp
from .errors import EstmError

SAMPLE_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 512
N_MELS = 128
TOP_DB = 80.0
AMIN = 1e-10  # power floor before the log, as librosa.power_to_db
MU_LAW_CLASSES = 256
MIN_FFT, MAX_FFT = 16, 1 << 16  # 2**16 points: 3 s at 22 050 Hz, far past any music feature's frame
MAX_MELS = 512


def frame_count(samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames of a centred STFT: 222 264 samples -> 435."""
    return 1 + samples // hop_length


# ------------------------------------------------------------------------------------------------ mel filters


@lru_cache(maxsize=16)
def mel_filters(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float, device: torch.device
) -> torch.Tensor:
    """The float32 filters, built once per settings and device."""
    return torch.from_numpy(dsp.mel_filters(sample_rate, n_fft, n_mels, f_min, f_max)).to(device=device,
                                                                                 dtype=torch.float32)


# --------------------------------------------------------------------------------------------------- log-mel


def log_mel(
    audio: torch.Tensor,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    f_min: float = 0.0,
    f_max: float | None = None,
    top_db: float | None = TOP_DB,
    standardize: bool = False,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """(B, T) or (T,) waveform -> (B, n_mels, 1 + T // hop_length) log-mel in dB.

    Each clip is referenced to its own maximum (0 dB) and floored at -top_db. `standardize` then z-scores each clip
    over its whole spectrogram, as the MER model expects. `pad_mode` pads the centred STFT's edges: "constant"
    (zeros, librosa >= 0.10) or "reflect" (older librosa). Computed in float32 even under autocast.
    """
    if audio.dim() == 1:
        audio = audio[None]
    f_max = sample_rate / 2.0 if f_max is None else f_max
    with torch.autocast(device_type=audio.device.type, enabled=False):
        audio = audio.float()
        window = torch.hann_window(n_fft, device=audio.device)
        spectrum = torch.stft(
            audio, n_fft, hop_length, window=window, center=True, pad_mode=pad_mode, return_complex=True
        )
        power = spectrum.real.square() + spectrum.imag.square()
        mel = mel_filters(sample_rate, n_fft, n_mels, float(f_min), float(f_max), audio.device) @ power
        decibels = 10.0 * torch.log10(mel.clamp(min=AMIN))
        decibels = decibels - decibels.amax(dim=(1, 2), keepdim=True)  # ref = the clip's max power
        if top_db is not None:
            decibels = decibels.clamp(min=-top_db)  # the maximum is 0 dB after referencing
        if standardize:
            mean = decibels.mean(dim=(1, 2), keepdim=True)
            std = decibels.std(dim=(1, 2), keepdim=True, unbiased=False)
            decibels = (decibels - mean) / (std + 1e-8)
    return decibels


# ---------------------------------------------------------------------------------------------------- mu-law


def mu_law_encode(audio: torch.Tensor, classes: int = MU_LAW_CLASSES) -> torch.Tensor:
    """Waveform in [-1, 1] -> integer codes in [0, classes) (int64), via mu-law companding."""
    mu = classes - 1
    audio = audio.clamp(-1.0, 1.0)
    companded = torch.sign(audio) * torch.log1p(mu * audio.abs()) / math.log1p(mu)
    return ((companded + 1.0) / 2.0 * mu + 0.5).long()


def mu_law_decode(codes: torch.Tensor, classes: int = MU_LAW_CLASSES) -> torch.Tensor:
    """Integer codes in [0, classes) -> waveform in [-1, 1] (float32); `mu_law_encode`'s inverse up to quantisation."""
    mu = classes - 1
    companded = codes.float() / mu * 2.0 - 1.0
    return torch.sign(companded) * torch.expm1(companded.abs() * math.log1p(mu)) / mu


@dataclass(frozen=True)
class FeatureSettings:
    """How waveforms become a classifier's input (log_mel's options); stored with the model so inference repeats it
    exactly. The defaults are the MER paper's (10.08 s at 22 050 Hz -> 128 x 435)."""

    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    standardize: bool = True

    def __post_init__(self):
        """Refuse settings no STFT can use, or whose filters alone would take gigabytes (a model file's metadata is
        read into these, and a hostile n_fft of 2**28 asked for 467 GB)."""
        def whole(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not (whole(self.n_fft) and MIN_FFT <= self.n_fft <= MAX_FFT):
            raise EstmError(f"n_fft must be a whole number from {MIN_FFT} to {MAX_FFT} (got {self.n_fft!r})")
        if not (whole(self.hop_length) and 1 <= self.hop_length <= self.n_fft):
            raise EstmError(f"hop_length must be a whole number from 1 to n_fft, {self.n_fft} "
                            f"(got {self.hop_length!r})")
        bins = self.n_fft // 2 + 1
        if not (whole(self.n_mels) and 1 <= self.n_mels <= min(MAX_MELS, bins)):
            raise EstmError(f"n_mels must be a whole number from 1 to {min(MAX_MELS, bins)} (got {self.n_mels!r})")
        if not isinstance(self.standardize, bool):
            raise EstmError(f"standardize must be true or false (got {self.standardize!r})")

    @classmethod
    def from_dict(cls, values) -> "FeatureSettings":
        """Settings from a model file's JSON, refusing keys they do not have (log_mel would be called with them)."""
        if not isinstance(values, dict):
            raise EstmError(f"feature settings must be an object, not {type(values).__name__}")
        unknown = sorted(set(values) - {item.name for item in fields(cls)})
        if unknown:
            raise EstmError(f"unknown feature settings {', '.join(map(str, unknown))}")
        return cls(**values)


def classifier_input(waveforms: torch.Tensor, sample_rate: int, settings: dict) -> torch.Tensor:
    """(B, T) waveforms -> (B, 1, n_mels, frames), the input every classifier family takes (`settings`: the
    log_mel options stored with the model)."""
    return log_mel(waveforms, sample_rate=sample_rate, **settings)[:, None]
