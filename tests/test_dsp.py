"""estm_core/dsp.py: numpy stand-ins for the librosa calls the cue meter made, checked against librosa itself (a
dependency of `estm evaluate`) on music (a Bach chorale rendered by the SoundFont, five instruments in a room; a
SynthEmo piece with chords, melody and percussion), and against hand-made signals."""

import numpy as np
import pytest

from estm_core import dsp

RATE = 22050
PIECES = ("chorale", "band")


@pytest.fixture(scope="module")
def librosa():
    return pytest.importorskip("librosa")


@pytest.fixture(scope="module")
def music() -> dict[str, np.ndarray]:
    """float32 mono at 22 050 Hz: 10 s of Bach's BWV 1.6 and 6 s of SynthEmo content 0 in Q2."""
    from estm_core.datasets import score_cues, score_rendering, scores, synth

    works = {work.name: work for work in scores.catalogue(["bach"])}
    excerpt = scores.excerpt_or_reason((works["bach/bwv1.6"], 0, score_cues.SECONDS))
    chorale, _ = score_rendering.render(excerpt, score_cues.CUES["Q1"], np.random.default_rng(0),
                                        soundfont=score_rendering.check_soundfont(None), spread=score_cues.NO_SPREAD,
                                        sample_rate=RATE)
    band = synth.render(0, "Q2", seconds=6.0, sample_rate=RATE)
    return {"chorale": chorale.astype(np.float32), "band": band.astype(np.float32)}


def mel_decibels(signal: np.ndarray) -> np.ndarray:
    """The cue meter's mel spectrum in dB (power summed by peak-1 filters), from the stand-ins."""
    power = dsp.stft_magnitude(signal, 2048, 512).astype(np.float64) ** 2
    return dsp.power_to_db(dsp.mel_filters(RATE, 2048, 128, area_normalised=False) @ power)


@pytest.mark.parametrize("area_normalised, norm", [(True, "slaney"), (False, None)])
def test_mel_filters_are_librosa_s(librosa, area_normalised, norm):
    theirs = librosa.filters.mel(sr=RATE, n_fft=2048, n_mels=128, norm=norm, dtype=np.float64)
    np.testing.assert_allclose(dsp.mel_filters(RATE, 2048, 128, area_normalised=area_normalised), theirs,
                               rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("piece", PIECES)
def test_stft_magnitude_is_librosa_s_uncentred_stft(librosa, music, piece):
    signal = music[piece]
    theirs = np.abs(librosa.stft(signal, n_fft=2048, hop_length=512, center=False))
    ours = dsp.stft_magnitude(signal, 2048, 512)
    assert ours.shape == theirs.shape == (1025, 1 + (len(signal) - 2048) // 512)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.max())  # float32 rounding


def test_hann_is_scipy_s_periodic_window():
    from scipy.signal import get_window

    np.testing.assert_allclose(dsp.hann(2048), get_window("hann", 2048), atol=1e-12)


@pytest.mark.parametrize("piece", PIECES)
def test_decibels_and_flux_are_librosa_s(librosa, music, piece):
    power = dsp.mel_filters(RATE, 2048, 128, area_normalised=False) @ (
        dsp.stft_magnitude(music[piece], 2048, 512).astype(np.float64) ** 2)
    decibels = dsp.power_to_db(power)
    np.testing.assert_allclose(decibels, librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0), atol=1e-9)
    assert decibels.min() >= decibels.max() - 80.0
    np.testing.assert_allclose(dsp.spectral_flux(decibels),
                               librosa.onset.onset_strength(S=decibels, sr=RATE, center=False)[1:], atol=1e-9)


def test_peak_pick_by_hand():
    values = np.array([0.0, 3.0, 0.0, 0.0, 2.9, 3.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    # 1 and 4 rise and stand over 1 above their windows' means; 5 does too but comes within `wait` of 4; 10 stands
    # under 1 above its mean. With a window reaching 2 frames ahead, 4 is not the largest of its window: 5 is
    assert list(dsp.peak_pick(values, pre_max=1, post_max=1, pre_avg=2, post_avg=3, delta=1.0, wait=1)) == [1, 4]
    assert list(dsp.peak_pick(values, pre_max=1, post_max=2, pre_avg=2, post_avg=3, delta=1.0, wait=1)) == [1, 5]
    assert list(dsp.peak_pick(np.zeros(0), pre_max=1, post_max=1, pre_avg=2, post_avg=3, delta=1.0, wait=1)) == []


@pytest.mark.parametrize("piece", PIECES)
def test_peak_pick_is_librosa_s_onset_picking_on_music(librosa, music, piece):
    envelope = dsp.spectral_flux(mel_decibels(music[piece]))
    theirs = librosa.onset.onset_detect(onset_envelope=envelope, sr=RATE, hop_length=512, normalize=False, delta=1.0)
    ours = dsp.peak_pick(envelope, pre_max=1, post_max=1, pre_avg=4, post_avg=5, delta=1.0, wait=1)
    assert len(ours) > 10 and list(ours) == list(theirs)


def test_peak_pick_is_librosa_s_onset_picking_at_the_edges(librosa):
    rng = np.random.default_rng(2)
    for trial in range(100):  # short envelopes, and ties
        envelope = np.maximum(0.0, 3 * rng.standard_normal(rng.integers(1, 300)))
        if trial % 2:
            envelope = np.round(envelope)
        theirs = librosa.onset.onset_detect(onset_envelope=envelope, sr=RATE, hop_length=512, normalize=False,
                                            delta=1.0)
        ours = dsp.peak_pick(envelope, pre_max=1, post_max=1, pre_avg=4, post_avg=5, delta=1.0, wait=1)
        assert list(ours) == list(theirs)


@pytest.mark.parametrize("piece", PIECES)
def test_tempogram_and_tempo_are_librosa_s(librosa, music, piece):
    envelope = dsp.spectral_flux(mel_decibels(music[piece]))
    window = 384  # the cue meter's (librosa's default)
    padded = np.pad(envelope, window // 2, mode="linear_ramp", end_values=0)[: len(envelope) + window - 1]
    theirs = librosa.feature.tempogram(onset_envelope=padded, sr=RATE, hop_length=512, win_length=window,
                                       center=False).sum(axis=1)
    ours = dsp.tempogram_sum(padded, window)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    mean = ours / len(envelope)
    bpm = librosa.feature.tempo(tg=mean[:, None], sr=RATE, hop_length=512)[0]
    assert dsp.tempo_lag(mean, RATE / 512) == round(60 * RATE / 512 / bpm)


def test_tempo_finds_a_planted_beat(librosa):
    envelope = np.maximum(0.0, np.random.default_rng(3).standard_normal(1500))
    envelope[::25] += 6.0  # a beat every 25 frames: 103.4 bpm at 43 frames a second
    padded = np.pad(envelope, 64, mode="linear_ramp", end_values=0)[: len(envelope) + 127]
    mean = dsp.tempogram_sum(padded, 128) / len(envelope)
    bpm = librosa.feature.tempo(tg=mean[:, None], sr=RATE, hop_length=512)[0]
    assert dsp.tempo_lag(mean, RATE / 512) == 25 == round(60 * RATE / 512 / bpm)


@pytest.mark.parametrize("piece", PIECES)
def test_constant_q_is_librosa_s_cqt_read_in_amplitude(librosa, music, piece):
    """librosa.cqt(scale=False) sums each L1-normalised filter times its length; a sine reads half its amplitude
    times the length there, so 2 |cqt| / length reads the amplitude, as ours. librosa's filters are built in the
    frequency domain and its octaves resampled its own way: ours is within 2.5 % of the loudest bin everywhere and
    1.5 % in RMS."""
    frequencies = librosa.midi_to_hz(24 + np.arange(84))
    lengths, _ = librosa.filters.wavelet_lengths(freqs=frequencies, sr=RATE)
    signal = music[piece].astype(np.float64)
    theirs = 2.0 * np.abs(librosa.cqt(signal, sr=RATE, hop_length=1024, fmin=frequencies[0], n_bins=84,
                                      scale=False)) / lengths[:, None]
    ours = dsp.cqt_magnitude(signal, RATE, 1024, 24, 84)
    assert ours.shape == theirs.shape
    error = np.abs(ours - theirs)
    assert error.max() <= 0.025 * theirs.max()
    assert np.sqrt(np.mean(error**2)) <= 0.015 * np.sqrt(np.mean(theirs**2))


@pytest.mark.parametrize("midi", [24, 40, 57, 69, 88, 107])
def test_a_sine_reads_its_amplitude_in_its_own_constant_q_bin(midi):
    seconds = 3.0
    t = np.arange(int(seconds * RATE)) / RATE
    sine = 0.4 * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t)
    magnitude = dsp.cqt_magnitude(sine, RATE, 1024, 24, 84)
    assert magnitude.shape == (84, 1 + len(sine) // 1024)
    inside = magnitude[:, 20:-20]  # away from the zeros beyond the ends
    assert set(np.argmax(inside, axis=0)) == {midi - 24}
    np.testing.assert_allclose(inside[midi - 24], 0.4, rtol=0.01)
    # the filters' main lobes reach the next semitone (about half) but not the one after
    for distance, (low, high) in ((1, (0.35, 0.65)), (2, (0.0, 0.05))):
        for neighbour in (midi - 24 - distance, midi - 24 + distance):
            if 0 <= neighbour < 84:
                assert low <= inside[neighbour].mean() / 0.4 <= high


def test_constant_q_frames_follow_the_signal_in_time():
    signal = np.zeros(RATE * 2)
    t = np.arange(RATE // 2) / RATE
    signal[RATE: RATE + len(t)] = np.sin(2 * np.pi * 261.63 * t)  # middle C from 1.0 to 1.5 s
    level = dsp.cqt_magnitude(signal, RATE, 1024, 24, 84)[60 - 24]
    loud = np.flatnonzero(level > 0.5)
    assert loud[0] * 1024 / RATE == pytest.approx(1.0, abs=0.1)
    assert loud[-1] * 1024 / RATE == pytest.approx(1.5, abs=0.1)


def test_constant_q_refuses_a_hop_the_octaves_cannot_share():
    with pytest.raises(ValueError, match="divisible by 64"):
        dsp.cqt_magnitude(np.zeros(4096), RATE, 1000, 24, 84)


@pytest.mark.parametrize("piece", PIECES)
@pytest.mark.parametrize("spectrum", ["mel", "constant-Q"])
def test_hpss_masks_are_librosa_s_on_music(librosa, music, piece, spectrum):
    """The cue meter's two uses: the percussive share on the mel magnitude (medians over 31 frames / 15 bands) and
    the pitched part of the constant-Q magnitude (3 frames / 5 semitones). librosa's defaults power=2, margin=1 are
    ours; tolerance: none, bit-equal."""
    signal = music[piece]
    if spectrum == "mel":
        power = dsp.stft_magnitude(signal, 2048, 512).astype(np.float64) ** 2
        magnitude, kernel = np.sqrt(dsp.mel_filters(RATE, 2048, 128, area_normalised=False) @ power), (31, 15)
    else:
        magnitude, kernel = dsp.cqt_magnitude(signal.astype(np.float64), RATE, 1024, 24, 84), (3, 5)
    ours = dsp.hpss_masks(magnitude, kernel)
    theirs = librosa.decompose.hpss(magnitude, kernel_size=kernel, mask=True, power=2.0, margin=1.0)
    assert 0.05 < ours[1].mean() < 0.95  # both parts are there
    for mine, reference in zip(ours, theirs):
        assert mine.dtype == reference.dtype
        np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("kernel, dtype", [((31, 15), np.float32), ((3, 5), np.float64)])
def test_hpss_masks_are_librosa_s_on_noise_and_silence(librosa, kernel, dtype):
    magnitude = np.abs(np.random.default_rng(0).standard_normal((64, 120))).astype(dtype)
    magnitude[:, 40:60] = 0  # silence: both parts zero, each mask 0.5
    ours = dsp.hpss_masks(magnitude, kernel)
    theirs = librosa.decompose.hpss(magnitude, kernel_size=kernel, mask=True)
    for mine, reference in zip(ours, theirs):
        assert mine.dtype == dtype
        np.testing.assert_array_equal(mine, reference)
    assert np.all(ours[0][:, 50] == 0.5) and np.all(ours[1][:, 50] == 0.5)
