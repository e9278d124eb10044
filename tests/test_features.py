import math

import numpy as np
import torch

from estm_core import dsp, features


# ------------------------------------------------------------- a float64 numpy reference of the same formulas


def reference_mel_filters(rate, n_fft, n_mels):
    """librosa.filters.mel(htk=False, norm='slaney') written out in float64, loop by loop."""

    def hz_to_mel(hz):
        return 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0) if hz >= 1000.0 else hz * 3.0 / 200.0

    def mel_to_hz(mel):
        return 1000.0 * math.exp((mel - 15.0) * math.log(6.4) / 27.0) if mel >= 15.0 else mel * 200.0 / 3.0

    top = hz_to_mel(rate / 2)
    edges = [mel_to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bins = np.arange(n_fft // 2 + 1) * rate / n_fft
    filters = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        rising = (bins - left) / (centre - left)
        falling = (right - bins) / (right - centre)
        filters[m] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (right - left)
    return filters


def reference_log_mel(signal, rate=22050, n_fft=1024, hop=512, n_mels=128, top_db=80.0):
    padded = np.pad(signal.astype(np.float64), n_fft // 2)  # centred frames, zero padding
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = 1 + (len(padded) - n_fft) // hop
    power = np.stack(
        [np.abs(np.fft.rfft(window * padded[i * hop: i * hop + n_fft])) ** 2 for i in range(frames)], axis=1
    )
    mel = reference_mel_filters(rate, n_fft, n_mels) @ power
    decibels = 10 * np.log10(np.maximum(mel, 1e-10)) - 10 * np.log10(max(mel.max(), 1e-10))
    return np.maximum(decibels, decibels.max() - top_db)


def music_like(samples, seed=0, rate=22050):
    """Harmonics, a melody of changing pitches and a little noise: a dense spectrum like real music."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    pitch = 220.0 * 2 ** (np.floor(t * 2) % 5 / 12)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    wave = sum(0.3 / k * np.sin(k * phase) for k in range(1, 6))
    return (wave + 0.02 * rng.standard_normal(samples)).astype(np.float32)


# ------------------------------------------------------------------------------------------------------ tests


def test_mel_filters_match_the_reference():
    ours = dsp.mel_filters(22050, 1024, 128, 0.0, 11025.0)
    np.testing.assert_allclose(ours, reference_mel_filters(22050, 1024, 128), rtol=1e-9, atol=1e-12)


def test_slaney_mel_scale_known_points():
    hz = np.array([0.0, 200.0, 1000.0, 6400.0])
    np.testing.assert_allclose(dsp.hz_to_mel(hz), [0.0, 3.0, 15.0, 42.0], atol=1e-9)
    np.testing.assert_allclose(dsp.mel_to_hz(dsp.hz_to_mel(hz)), hz, atol=1e-9)


def test_log_mel_matches_the_float64_reference_with_the_paper_shape():
    signal = music_like(222264)
    ours = features.log_mel(torch.from_numpy(signal))
    assert ours.shape == (1, 128, 435)
    assert features.frame_count(222264) == 435
    difference = np.abs(ours[0].numpy() - reference_log_mel(signal)).max()
    assert difference < 1e-3, f"max difference {difference} dB"


def test_log_mel_is_per_clip_in_a_batch():
    quiet = 0.01 * music_like(22050, seed=1)
    loud = music_like(22050, seed=2)
    batch = features.log_mel(torch.from_numpy(np.stack([quiet, loud])))
    alone = features.log_mel(torch.from_numpy(quiet))
    assert batch.shape == (2, 128, 44)
    torch.testing.assert_close(batch[0], alone[0], atol=1e-3, rtol=0)
    for clip in batch:  # each clip referenced to its own maximum and floored top_db below it
        assert clip.max().item() == 0.0 and clip.min().item() >= -80.0


def test_standardized_log_mel_has_zero_mean_unit_std_per_clip():
    batch = torch.from_numpy(np.stack([music_like(22050, seed=s) for s in (3, 4)]))
    standardized = features.log_mel(batch, standardize=True)
    assert torch.allclose(standardized.mean(dim=(1, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(standardized.std(dim=(1, 2), unbiased=False), torch.ones(2), atol=1e-5)


def test_log_mel_of_silence_is_finite():
    out = features.log_mel(torch.zeros(2, 4096))
    assert torch.isfinite(out).all()


def test_mu_law_endpoints_and_round_trip_error_bound():
    mu = 255
    endpoints = features.mu_law_encode(torch.tensor([-1.0, 0.0, 1.0]))
    assert endpoints.tolist() == [0, 128, 255]
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    codes = features.mu_law_encode(x)
    assert codes.dtype == torch.int64 and codes.min() == 0 and codes.max() == 255
    error = (features.mu_law_decode(codes).double() - x).abs()
    # rounding moves the companded value by at most 1/mu; the expansion's slope there is ln(1+mu)(1+mu|x|)/mu
    bound = math.log1p(mu) / mu**2 * (1 + mu * x.abs()) * math.exp(math.log1p(mu) / mu) + 1e-6
    assert (error <= bound).all()
    # near silence the steps are ~35x finer than 8-bit linear quantisation's (error up to 1/255): mu-law's point
    assert error[x.abs() < 0.001].max() < 1.2e-4
