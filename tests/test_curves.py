"""Cue curves (what a WaveNet is conditioned on) and the sketches a quadrant's curves come from."""

import numpy as np
import pandas as pd
import pytest
import torch

from estm_core import dsp, features
from estm_core.cues.curves import (CHANNELS, CUT_FRAMES, HOP, LEVEL, ONSET, REGISTER, SAMPLE_RATE, frames_of, measure,
                                   summary)
from estm_core.cues.spectral import ONSET_DELTA_DB, ONSET_PEAK_WINDOWS
from estm_core.datasets.mulaw import MulawCache, WindowDataset, build_curves, spans
from estm_core.sketch import quadrant_curves, quadrant_sketch

from conftest import tone

MIDDLE = {"level_db": -20.0, "register_midi": 70.0, "onset_rate": 2.5}


def test_a_sine_reads_its_level_register_and_pitch_class():
    amplitude = 0.2  # RMS 0.2 / sqrt(2): -16.99 dBFS
    measured = measure(tone(1.0, SAMPLE_RATE, frequency=440.0, amplitude=amplitude))
    assert measured.shape == (frames_of(SAMPLE_RATE), len(CHANNELS)) == (63, 16)
    middle = measured[5:-5]  # away from the ends, where the analyses' windows reach past the tone
    level_db = 20 * np.log10(amplitude / np.sqrt(2))
    assert middle[:, LEVEL] * 20 - 20 == pytest.approx(level_db, abs=0.05)
    assert middle[:, REGISTER] * 12 + 72 == pytest.approx(69.0, abs=0.3)  # a pure A4 has no overtones to lift it
    assert (middle[:, 4:].argmax(axis=1) == CHANNELS.index("A") - 4).all()


def test_silence_reads_nothing_but_its_level():
    measured = measure(np.zeros(4000, np.float32))
    assert measured.shape == (16, 16)
    assert (measured[:, LEVEL] == -4.0).all() and not measured[:, 1:].any()  # -100 dB, clipped at -4


def test_onsets_and_level_summarise_what_was_played():
    samples = np.zeros(4 * SAMPLE_RATE, np.float32)
    note = tone(0.1, SAMPLE_RATE, frequency=660.0, amplitude=0.5) * np.hanning(1600).astype(np.float32)
    for start in np.arange(0, 4.0, 0.25):  # 4 notes a second
        position = int(start * SAMPLE_RATE)
        samples[position:position + 1600] += note
    measured = measure(samples)
    assert summary(measured)["onset_rate"] == pytest.approx(4.0, abs=0.3)
    assert np.argmax(measured[:20, ONSET]) in (0, 1)  # the first note starts in the first frames
    steady = tone(1.0, SAMPLE_RATE, amplitude=0.5)
    assert summary(measure(steady * 0.1))["level_db"] == pytest.approx(summary(measure(steady))["level_db"] - 20,
                                                                       abs=0.01)


def test_a_frame_describes_its_own_samples():
    """Frame f is the samples [f * HOP, (f + 1) * HOP): a tone that starts at frame 10 is silent before it."""
    samples = np.zeros(30 * HOP, np.float32)
    samples[10 * HOP:] = tone(20 * HOP / SAMPLE_RATE, SAMPLE_RATE, amplitude=0.5)
    measured = measure(samples)
    assert (measured[:10, LEVEL] == -4.0).all() and (measured[10:, LEVEL] > -0.6).all()


def test_quadrant_sketches_follow_the_cue_profile():
    heard = {quadrant: [summary(quadrant_curves(quadrant, MIDDLE, 6.0, seed)) for seed in range(2)]
             for quadrant in ("Q1", "Q2", "Q3", "Q4")}
    mean = {quadrant: {key: np.mean([item[key] for item in items]) for key in items[0]}
            for quadrant, items in heard.items()}
    for fast in ("Q1", "Q2"):  # arousal: half an octave of tempo and 5 dB either side of the middle
        for slow in ("Q3", "Q4"):
            assert mean[fast]["onset_rate"] > 1.4 * mean[slow]["onset_rate"]
            assert mean[fast]["level_db"] > mean[slow]["level_db"] + 5
    assert mean["Q1"]["register_midi"] > mean["Q4"]["register_midi"] > mean["Q2"]["register_midi"] > \
        mean["Q3"]["register_midi"]
    assert np.array_equal(quadrant_sketch("Q1", MIDDLE, 1.0, 3), quadrant_sketch("Q1", MIDDLE, 1.0, 3))
    assert not np.array_equal(quadrant_sketch("Q1", MIDDLE, 1.0, 3), quadrant_sketch("Q1", MIDDLE, 1.0, 4))


def test_a_tone_cut_mid_note_counts_one_onset_its_start():
    """Where music is cut mid-note, the cut's click reads as an attack in the last frames: summary leaves them out."""
    curves = measure(tone(2.0, SAMPLE_RATE, frequency=440.0, amplitude=0.3))
    counted = len(curves) - CUT_FRAMES
    peaks = dsp.peak_pick(curves[:, ONSET] * 4.0, delta=ONSET_DELTA_DB, **ONSET_PEAK_WINDOWS)
    assert peaks[0] == 0 and peaks[-1] >= counted  # the start, and the click
    assert summary(curves)["onset_rate"] * counted * HOP / SAMPLE_RATE == pytest.approx(1.0)


def test_a_sketch_asks_for_the_curves_its_audio_would_have_in_a_training_cache(tmp_path):
    """Training measures curves on the mu-law cache; a sketch's are measured after the same coding."""
    sketch = quadrant_sketch("Q4", MIDDLE, 2.0, 1)
    codes = features.mu_law_encode(torch.from_numpy(sketch)).numpy().astype(np.uint8)
    (tmp_path / "codes.u8").write_bytes(codes.tobytes())
    (tmp_path / "cache.json").write_text('{"fingerprint": "x"}')
    index = pd.DataFrame({"song_id": ["a"], "path": ["a"], "label": "", "part": "train", "start": [0],
                          "length": [len(codes)]})
    cache = MulawCache(tmp_path, index, [])
    build_curves(cache)
    assert np.array_equal(quadrant_curves("Q4", MIDDLE, 2.0, 1), np.asarray(cache.curves()))
    assert not np.array_equal(quadrant_curves("Q4", MIDDLE, 2.0, 1), measure(sketch))  # the coding shows


def test_training_windows_carry_the_curves_of_their_own_audio(tmp_path):
    lengths = [3 * HOP + 17, 5 * HOP, 7 * HOP + 100]
    codes = [features.mu_law_encode(torch.from_numpy(tone(n / SAMPLE_RATE, SAMPLE_RATE, frequency=300.0 * (k + 1),
                                                           amplitude=0.1 * (k + 1)))).numpy().astype(np.uint8)
             for k, n in enumerate(lengths)]
    (tmp_path / "codes.u8").write_bytes(np.concatenate(codes).tobytes())
    (tmp_path / "cache.json").write_text('{"fingerprint": "x"}')
    starts = np.cumsum([0] + lengths[:-1])
    index = pd.DataFrame({"song_id": ["a", "b", "c"], "path": ["a", "b", "c"], "label": "", "part": "train",
                          "start": starts, "length": lengths})
    cache = MulawCache(tmp_path, index, [])
    build_curves(cache)
    each = [measure(features.mu_law_decode(torch.from_numpy(c.astype(np.int64))).numpy()) for c in codes]
    assert np.array_equal(cache.curves(), np.concatenate(each))
    window = 2 * HOP + 5
    dataset = WindowDataset(cache, spans(index, "train", "time"), window, [], windows=40, curves=True)
    for item in range(len(dataset)):
        window_codes, _, window_curves = dataset[item]
        for file, (start, own) in enumerate(zip(starts, codes)):
            found = [offset for offset in range(0, len(own) - window + 1, HOP)
                     if np.array_equal(own[offset:offset + window], window_codes.numpy())]
            if found:
                break
        assert found, "a window starts on a frame of its file"
        frame = found[0] // HOP
        assert torch.equal(window_curves, torch.from_numpy(each[file][frame:frame + frames_of(window)].T.copy()))


def test_the_generation_summary_counts_what_each_judge_heard():
    from estm_core.generation_evaluation import summarise

    table = pd.DataFrame({
        "system": ["m"] * 4, "asked_by": ["curves"] * 4, "asked": ["Q1", "Q1", "Q3", "Q3"],
        "cue_judge": ["Q1", "Q2", "Q3", "Q4"], "judge": [None] * 4,
        "tempo_error": [0.1, -0.2, 0.0, 0.14], "level_error_db": [1.0, -3.0, 0.5, 2.5], "register_error": [1, 2, 3, 4]})
    figures = summarise(table, quadrants=True)["m"]
    heard = figures["overall"]["cue_judge"]
    assert heard["accuracy"]["share"] == 0.5  # Q1 and Q3 heard; Q2 and Q4: the asked arousal, the other valence
    assert heard["arousal"]["share"] == 1.0 and heard["valence"]["share"] == 0.5
    assert "judge" not in figures["overall"]  # no classifier judged
    assert figures["overall"]["tempo_within"]["share"] == 0.75 and figures["overall"]["level_within"]["share"] == 0.5
    assert figures["overall"]["median_abs_error"] == pytest.approx({"tempo": 0.12, "level_db": 1.75, "register": 2.5})
    assert figures["Q3"]["cue_judge"]["accuracy"]["share"] == 0.5 and figures["asked_by"] == "curves"


def test_the_training_audio_is_asked_by_nothing_in_the_summary():
    from estm_core.generation_evaluation import CEILING, summarise

    table = pd.DataFrame({"system": [CEILING, "m"], "asked": ["Q1", "Q1"], "cue_judge": ["Q1", "Q2"],
                          "judge": [None, None], "asked_by": [np.nan, "label"]})
    figures = summarise(table, quadrants=True)
    assert figures[CEILING]["asked_by"] is None and figures["m"]["asked_by"] == "label"


def test_the_ceiling_is_judged_in_clips_as_long_as_the_generated_ones():
    from estm_core.generation_evaluation import _clips

    # two Q1 files of 2.5 and 1 clip lengths, one Q2 file of 3, and an unlabelled one that is not judged
    index = pd.DataFrame({"label": ["Q1", "Q1", "Q2", ""], "start": [0, 250, 350, 650], "length": [250, 100, 300, 99]})
    clips = _clips(index, ["Q1", "Q2"], 2, 100)
    # the first clip of every file before a second of any; a file shorter than a clip is judged whole; 2 per label
    assert clips[["label", "start", "length"]].values.tolist() == [["Q1", 0, 100], ["Q1", 250, 100],
                                                                 ["Q2", 350, 100], ["Q2", 450, 100]]
    assert _clips(index, ["Q1"], 5, 400)[["start", "length"]].values.tolist() == [[0, 250], [250, 100]]


def test_a_model_on_labels_and_curves_is_asked_by_both(monkeypatch):
    from types import SimpleNamespace

    from estm_core import generate
    from estm_core.generation_evaluation import _judged_clips

    given = {}

    def generated(wavenet, labels, *, curves, **options):
        given.update(labels=labels, curves=curves)
        return np.zeros((len(labels), SAMPLE_RATE), np.float32)

    monkeypatch.setattr(generate, "generate", generated)
    monkeypatch.setattr(generate, "takes_curves", lambda info: True)
    sketches = [np.zeros((frames_of(SAMPLE_RATE), len(CHANNELS)), np.float32) for _ in range(2)]
    ears = SimpleNamespace(judge=lambda clip: {"cue_judge": "Q1", "judge": None})
    wavenet = SimpleNamespace(name="both", info=SimpleNamespace(labels=["Q1", "Q3"]))
    rows = _judged_clips(wavenet, ["Q1", "Q3"], sketches, ears, seconds=1.0, temperature=1.0, seed=0)
    assert given["labels"] == ["Q1", "Q3"] and given["curves"] is sketches
    assert [row["asked_by"] for row in rows] == ["label and curves"] * 2
