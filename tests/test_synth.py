"""SynthEmo: the corpus on disk, determinism, reruns, and the emotion cues measured back from the audio."""

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from estm_core.datasets import synth, synth_music
from estm_core.errors import EstmError

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
RATE = synth.SAMPLE_RATE


# ------------------------------------------------------------------------------------------ measuring the audio


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def power_spectrum(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, power) of the whole signal in one FFT: fine enough to resolve semitones in the bass."""
    return np.fft.rfftfreq(len(samples), 1 / RATE), np.abs(np.fft.rfft(samples)) ** 2


def spectral_centroid(samples: np.ndarray) -> float:
    frequencies, power = power_spectrum(samples)
    return float((frequencies * power).sum() / power.sum())


def onset_times(samples: np.ndarray, hop: int = 256, window: int = 1024, min_gap_s: float = 0.1) -> np.ndarray:
    """Seconds of the peaks of the spectral flux (the summed rise of log magnitudes), which marks every new note,
    legato or not. Peaks closer than `min_gap_s` (faster than any note of the corpus) count once."""
    padded = np.concatenate([np.zeros(window, np.float32), samples])
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop] * np.hanning(window)
    magnitude = np.abs(np.fft.rfft(frames, axis=1))
    # Relative to the clip's loudest bin, so loudness does not matter, and floored 100 dB under it, so that the rise
    # of a dark note's faint upper partials counts as much as that of a bright one's
    log_magnitude = np.log1p(1e5 * magnitude / magnitude.max())
    flux = np.maximum(np.diff(log_magnitude, axis=0), 0).sum(axis=1)
    threshold = flux.mean() + 0.5 * flux.std()
    middle = flux[1:-1]
    peaks = np.flatnonzero((middle > flux[:-2]) & (middle >= flux[2:]) & (middle > threshold)) + 1
    kept = []
    for peak in peaks:
        if not kept or (peak - kept[-1]) * hop / RATE >= min_gap_s:
            kept.append(peak)
    return np.array(kept) * hop / RATE


def onset_rate(samples: np.ndarray) -> float:
    return len(onset_times(samples)) / (len(samples) / RATE)


def quiet_fraction(samples: np.ndarray, hop: int = 220, below_db: float = 40.0) -> float:
    """Fraction of 10 ms frames more than `below_db` under the loudest: the gaps that staccato leaves."""
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop).astype(np.float64)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    return float(np.mean(level_db < level_db.max() - below_db))


def chroma(samples: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """(12,) power per pitch class (0 = C) from 60 Hz to 2 kHz, counting only frequencies within `tolerance`
    semitones of equal temperament. So narrow a tolerance leaves out the 5th harmonic (14 cents flat of a major
    third), which would otherwise put a major third into every bright minor chord."""
    frequencies, power = power_spectrum(samples)
    band = (frequencies > 60) & (frequencies < 2000)
    pitch = 12 * np.log2(frequencies[band] / 440) + 69
    in_tune = np.abs(pitch - np.round(pitch)) < tolerance
    pitch_class = np.round(pitch[in_tune]).astype(int) % 12
    return np.bincount(pitch_class, weights=power[band][in_tune], minlength=12)


def major_third_balance(samples: np.ndarray, tonic_pitch_class: int) -> float:
    """log(power of the major third / power of the minor third) above the tonic: > 0 major, < 0 minor."""
    profile = chroma(samples)
    return float(np.log(profile[(tonic_pitch_class + 4) % 12] / profile[(tonic_pitch_class + 3) % 12]))


@pytest.fixture(scope="module")
def renderings() -> dict[int, dict[str, np.ndarray]]:
    """Three contents in the four quadrants, 6 s each: long enough to hold a few bars even at the slowest tempo."""
    return {content: {q: synth.render(content, q, seconds=6.0) for q in QUADRANTS} for content in range(3)}


# ------------------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("seconds, sample_rate", [(10.08, 22050), (2.337, 22050), (1.0, 16000), (0.05, 8000)])
def test_renderings_have_the_exact_length_a_safe_peak_and_sound(seconds, sample_rate):
    for quadrant in QUADRANTS:
        samples = synth.render(1, quadrant, seconds=seconds, sample_rate=sample_rate)
        assert samples.dtype == np.float32 and samples.shape == (round(seconds * sample_rate),)
        assert np.isfinite(samples).all()
        assert 0 < np.abs(samples).max() <= 1.0
        assert rms(samples) > 1e-3, f"{quadrant} is silent"


def test_the_same_seed_gives_the_same_audio_and_another_seed_other_content():
    first = synth.render(2, "Q3", seconds=2.0, seed=5)
    np.testing.assert_array_equal(first, synth.render(2, "Q3", seconds=2.0, seed=5))
    assert not np.array_equal(first, synth.render(2, "Q3", seconds=2.0, seed=6))
    assert not np.array_equal(first, synth.render(3, "Q3", seconds=2.0, seed=5))
    assert synth_music.compose(2, 5) == synth_music.compose(2, 5) != synth_music.compose(2, 6)


def test_the_quadrant_changes_the_cues_not_the_content():
    content = synth_music.compose(0)

    def first_two_bars(quadrant: str) -> list[tuple[float, float]]:
        """(onset in beats, pitch class) of every note in the first 8 beats."""
        cues = synth.CUES[quadrant]
        notes = synth_music.score(content, cues, 8 * 60 / cues.tempo_bpm)
        return sorted(zip(np.round(notes.onset_s * cues.tempo_bpm / 60, 6), notes.midi % 12))

    assert first_two_bars("Q1") == first_two_bars("Q4")  # both major: the same rhythm and notes, octaves aside
    assert set(first_two_bars("Q3")) < set(first_two_bars("Q2"))  # both minor; Q2 adds its dissonance


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Q5"):
        synth.render(0, "Q5")
    with pytest.raises(EstmError, match="one frame"):
        synth.render(0, "Q1", seconds=0)
    with pytest.raises(EstmError, match="8000 Hz"):
        synth.render(0, "Q1", sample_rate=4000)
    with pytest.raises(EstmError, match="seed"):
        synth.render(0, "Q1", seed=-1)


# ------------------------------------------------------------------------------ the cues, heard in the audio


def test_high_arousal_is_faster(renderings):
    for content, by_quadrant in renderings.items():
        rate = {q: onset_rate(samples) for q, samples in by_quadrant.items()}
        assert min(rate["Q1"], rate["Q2"]) > 1.3 * max(rate["Q3"], rate["Q4"]), f"content {content}: {rate}"


def test_high_arousal_is_louder(renderings):
    for content, by_quadrant in renderings.items():
        level = {q: rms(samples) for q, samples in by_quadrant.items()}
        assert min(level["Q1"], level["Q2"]) > 1.5 * max(level["Q3"], level["Q4"]), f"content {content}: {level}"


def test_high_arousal_is_brighter(renderings):
    for content, by_quadrant in renderings.items():
        centroid = {q: spectral_centroid(samples) for q, samples in by_quadrant.items()}
        assert min(centroid["Q1"], centroid["Q2"]) > 1.5 * max(centroid["Q3"], centroid["Q4"]), (
            f"content {content}: {centroid}")


def test_high_arousal_is_detached(renderings):
    for content, by_quadrant in renderings.items():
        gaps = {q: quiet_fraction(samples) for q, samples in by_quadrant.items()}
        assert min(gaps["Q1"], gaps["Q2"]) > max(gaps["Q3"], gaps["Q4"]), f"content {content}: {gaps}"


def test_positive_valence_is_major_and_negative_minor(renderings):
    for content, by_quadrant in renderings.items():
        tonic = synth_music.compose(content).tonic_midi % 12  # the content's key, which the quadrant must not change
        balance = {q: major_third_balance(samples, tonic) for q, samples in by_quadrant.items()}
        assert balance["Q3"] < 0 < min(balance["Q1"], balance["Q4"]), f"content {content}: {balance}"
        assert min(balance["Q1"], balance["Q4"]) > max(balance["Q2"], balance["Q3"]) + 1, (
            f"content {content}: {balance}")


# ------------------------------------------------------------------------------------------------ the corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus of 2 contents x 3 s, with the progress reports it made."""
    folder = tmp_path_factory.mktemp("synthemo")
    progress = []
    table = synth.generate(folder, contents=2, seconds=3.0, seed=0,
                           on_progress=lambda done, total: progress.append((done, total)))
    return folder, table, progress


def test_generate_writes_the_mer_taffc_layout(corpus):
    folder, _, progress = corpus
    assert sorted(p.name for p in folder.iterdir()) == ["Q1", "Q2", "Q3", "Q4", "pairs.csv", "synthemo.csv",
                                                         "synthemo.json"]
    for quadrant in QUADRANTS:
        names = sorted(p.name for p in (folder / quadrant).iterdir())
        assert names == [f"synthemo-c000-{quadrant}.wav", f"synthemo-c001-{quadrant}.wav"]
        for name in names:
            info = sf.info(folder / quadrant / name)
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, 66150, "PCM_16")
    assert progress == [(done, 8) for done in range(1, 9)]


def test_the_manifest_lists_every_file_with_its_cues(corpus):
    folder, table, _ = corpus
    written = pd.read_csv(folder / "synthemo.csv")
    pd.testing.assert_frame_equal(table, written)
    cue_names = [field.name for field in dataclasses.fields(synth_music.Cues)]
    assert list(written.columns) == ["song_id", "path", "label", "group", *cue_names]
    assert list(written["label"]) == list(QUADRANTS) * 2
    assert list(written["group"]) == ["c000"] * 4 + ["c001"] * 4
    assert written.loc[5, "song_id"] == "synthemo-c001-Q2" and written.loc[5, "path"] == "Q2/synthemo-c001-Q2.wav"
    for row in written.itertuples():
        assert (folder / row.path).is_file() and row.path.split("/")[0] == row.label
    assert set(written.loc[written["label"] == "Q3", "mode"]) == {"minor"}


def test_pairs_hold_the_four_renderings_of_each_content(corpus):
    folder, _, _ = corpus
    pairs = pd.read_csv(folder / "pairs.csv")
    assert list(pairs.columns) == ["content", *QUADRANTS]
    assert list(pairs["content"]) == ["c000", "c001"]
    assert pairs.loc[1, "Q4"] == "Q4/synthemo-c001-Q4.wav"
    assert all((folder / path).is_file() for path in pairs[list(QUADRANTS)].to_numpy().ravel())


def test_the_parameters_are_recorded(corpus):
    folder, _, _ = corpus
    parameters = json.loads((folder / "synthemo.json").read_text())
    assert parameters == {"contents": 2, "seconds": 3.0, "seed": 0, "sample_rate": 22050,
                          "cues_version": synth.cues_version()}


def test_files_are_bit_identical_for_the_same_arguments(corpus, tmp_path):
    folder, _, _ = corpus
    synth.generate(tmp_path, contents=2, seconds=3.0, seed=0)
    for path in ["synthemo.csv", "pairs.csv", "synthemo.json", "Q2/synthemo-c001-Q2.wav"]:
        assert (tmp_path / path).read_bytes() == (folder / path).read_bytes(), path
    other = tmp_path / "other-seed"
    synth.generate(other, contents=1, seconds=3.0, seed=1)
    assert (other / "Q1/synthemo-c000-Q1.wav").read_bytes() != (folder / "Q1/synthemo-c000-Q1.wav").read_bytes()


def _age(folder) -> list:
    """Set every file's mtime to 1 ns after the epoch, so any rewrite shows; returns the files."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    for path in files:
        os.utime(path, ns=(1, 1))
    return files


def test_a_rerun_reuses_a_complete_corpus(tmp_path):
    first = synth.generate(tmp_path, contents=1, seconds=0.5)
    files = _age(tmp_path)
    progress = []
    again = synth.generate(tmp_path, contents=1, seconds=0.5, on_progress=lambda *report: progress.append(report))
    pd.testing.assert_frame_equal(first, again)
    assert [path.stat().st_mtime_ns for path in files] == [1] * len(files)
    assert progress == []  # nothing to do, nothing to report


def test_a_rerun_completes_an_interrupted_corpus(tmp_path):
    synth.generate(tmp_path, contents=1, seconds=0.5)
    missing = tmp_path / "Q3/synthemo-c000-Q3.wav"
    original = missing.read_bytes()
    missing.unlink()
    (tmp_path / "pairs.csv").unlink()
    files = [path for path in _age(tmp_path) if path.suffix == ".wav"]
    synth.generate(tmp_path, contents=1, seconds=0.5)
    assert missing.read_bytes() == original
    assert (tmp_path / "pairs.csv").is_file()
    assert [path.stat().st_mtime_ns for path in files] == [1] * len(files)


def test_other_parameters_are_refused_unless_forced(tmp_path):
    synth.generate(tmp_path, contents=2, seconds=0.5, seed=0)
    before = (tmp_path / "Q1/synthemo-c000-Q1.wav").read_bytes()
    with pytest.raises(EstmError, match="--force") as refused:
        synth.generate(tmp_path, contents=1, seconds=0.5, seed=1)
    message = str(refused.value)
    assert "\n" not in message and "seed 0 (asked 1)" in message and "another folder" in message
    assert (tmp_path / "Q1/synthemo-c000-Q1.wav").read_bytes() == before

    table = synth.generate(tmp_path, contents=1, seconds=0.5, seed=1, force=True)
    assert len(table) == 4
    assert (tmp_path / "Q1/synthemo-c000-Q1.wav").read_bytes() != before
    assert not (tmp_path / "Q1/synthemo-c001-Q1.wav").exists()  # the old corpus's extra content is gone
    assert json.loads((tmp_path / "synthemo.json").read_text())["seed"] == 1


def test_generate_refuses_an_empty_corpus(tmp_path):
    with pytest.raises(EstmError, match="contents"):
        synth.generate(tmp_path, contents=0)
    assert not any(tmp_path.iterdir())
