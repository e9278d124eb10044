"""The transfer evaluation: alignment, the cue judge, and on a tiny paired corpus the floor and the ceiling."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from estm_core import audio
from estm_core import transfer_evaluation as evaluation
from estm_core import transfer_measures as measures
from estm_core.cues.meter import Cues
from estm_core.cues.judge import CueJudge


def test_alignment_finds_the_tempo_and_scores_a_slowed_copy_as_the_same():
    frames = np.random.default_rng(0).normal(size=(200, 12))
    slower = np.repeat(frames, 2, axis=0)  # the same frames, each held twice as long
    assert measures.mel_distance(frames, slower) == pytest.approx(0.0)
    assert measures.chroma_correlation(frames, slower) == pytest.approx(1.0)
    unrelated = np.random.default_rng(1).normal(size=(200, 12))
    assert abs(measures.chroma_correlation(frames, unrelated)) < 0.2
    # root mean square over the bands of a 3 dB difference everywhere is 3 dB
    assert measures.mel_distance(frames, frames + 3.0) == pytest.approx(3.0)
    assert np.isnan(measures.mel_distance(frames, frames[:10]))  # too little to align with



def test_alignment_finds_a_tempo_between_the_coarse_scales():
    # smooth features (as chroma and mel frames are), 30 s at 43 frames a second, played 1.7 % slower: halfway between
    # two of TIME_SCALES, where the best coarse scale leaves the last frames 11 frames out
    rng = np.random.default_rng(0)
    kernel = np.hanning(21) / np.hanning(21).sum()
    frames = np.stack([np.convolve(rng.normal(size=1300), kernel, mode="same") for _ in range(12)], axis=1)
    scale = 2.0 ** (np.log2(measures.TIME_SCALES[40:42]).mean())
    times = np.arange(round(1300 * scale)) / scale
    slower = np.stack([np.interp(times, np.arange(1300), column) for column in frames.T], axis=1)
    assert measures.chroma_correlation(frames, slower) > 0.99
    assert measures.mel_distance(frames, slower) < 0.1 * measures.mel_distance(frames, frames[::-1])

def test_the_wilson_interval_matches_hand_computed_values():
    # p = k/n, z = 1.96: centre (p + z²/2n) / (1 + z²/n), half-width z / (1 + z²/n) * sqrt(p(1 - p)/n + z²/4n²)
    assert evaluation.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert evaluation.wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert evaluation.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # wide even at a share of 0
    assert evaluation.wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert all(math.isnan(bound) for bound in evaluation.wilson_interval(0, 0))
    few, many = pd.Series([True] * 200 + [False] * 99), pd.Series([True] * 200 + [False] * 100)
    assert evaluation.share_of(few)["interval"] == pytest.approx(list(evaluation.wilson_interval(200, 299)))
    assert evaluation.share_of(many) == {"share": 2 / 3, "items": 300, "interval": None}  # a few hundred: none


def test_confusion_and_accuracy_per_asked_quadrant_on_a_hand_made_table():
    asked = pd.Series(["Q1", "Q1", "Q1", "Q2", "Q2", "Q3", "Q4", "Q4"])
    heard = pd.Series(["Q1", "Q2", "Q1", "Q2", "Q2", "Q4", "Q4", None])  # the last output was not judged
    counts = evaluation.confusion(asked, heard)
    assert counts.to_dict("index") == {"Q1": {"Q1": 2, "Q2": 1, "Q3": 0, "Q4": 0},
                                       "Q2": {"Q1": 0, "Q2": 2, "Q3": 0, "Q4": 0},
                                       "Q3": {"Q1": 0, "Q2": 0, "Q3": 0, "Q4": 1},
                                       "Q4": {"Q1": 0, "Q2": 0, "Q3": 0, "Q4": 1}}
    shares = evaluation.per_quadrant(asked, heard)
    assert {quadrant: (share["share"], share["items"]) for quadrant, share in shares.items()} == {
        "Q1": (2 / 3, 3), "Q2": (1.0, 2), "Q3": (0.0, 1), "Q4": (0.5, 2)}  # an unjudged output is a miss
    assert shares["Q1"]["interval"] == pytest.approx(list(evaluation.wilson_interval(2, 3)))


def test_loudness_direction_counts_the_pairs_asked_to_flip_arousal_on_a_hand_made_table():
    rows = pd.DataFrame([("Q3", "Q1", 3.0), ("Q3", "Q2", -1.0), ("Q1", "Q3", -2.0), ("Q2", "Q4", 0.0),
                         ("Q1", "Q2", 5.0), ("Q4", "Q1", math.nan)],  # Q1 -> Q2 keeps arousal: not counted
                        columns=["content_quadrant", "target_quadrant", "loudness_moved"])
    moved = evaluation.loudness_direction(rows)
    assert moved.tolist() == [True, False, True, False, False]  # unchanged (0) or unmeasured: not moved


BASE = Cues(duration_s=10.0, tempo_bpm=100.0, onset_rate=2.0, loudness_lufs=-20.0, dynamic_range_db=5.0,
            centroid_hz=800.0, tilt_db_per_octave=-6.0, percussive_ratio=0.1, onset_decay=0.7,
            pitch_centroid_midi=60.0, tonic="C", mode="major", key_confidence=0.8)


def test_the_cue_judge_learns_which_cues_name_the_label_and_copes_with_missing_ones():
    rng = np.random.default_rng(0)
    fast = [replace(BASE, onset_rate=float(rng.uniform(4, 6)), loudness_lufs=float(rng.normal(-20, 3)))
            for _ in range(20)]
    slow = [replace(BASE, onset_rate=float(rng.uniform(1, 2)), loudness_lufs=float(rng.normal(-20, 3)))
            for _ in range(20)]
    judge = CueJudge.fit(fast + slow, ["Q1"] * 20 + ["Q3"] * 20)
    assert judge.predict([replace(BASE, onset_rate=5.0), replace(BASE, onset_rate=1.2)]) == ["Q1", "Q3"]
    probabilities = judge.probabilities([replace(BASE, onset_rate=float("nan"), tempo_bpm=float("nan"))])
    assert probabilities.shape == (1, 2) and np.isclose(probabilities.sum(), 1.0)
    with pytest.raises(ValueError, match="two labels"):
        CueJudge.fit(fast, ["Q1"] * 20)


@pytest.mark.parametrize("labels", [2, 4])
def test_the_cue_judge_fit_is_the_optimum_of_its_stated_loss(labels):
    # a softmax over every label minimising the mean log-loss + L2 * (the weights' squares, not the biases'): its
    # gradient vanishes at the fitted weights, so scikit-learn's C and its one-vector fit of two labels are translated
    # right; a missing feature counts as the training mean
    from estm_core.cues.judge import L2, features

    rng = np.random.default_rng(1)
    names = [f"Q{1 + index % labels}" for index in range(60)]
    cues = [replace(BASE, onset_rate=float(rng.uniform(1, 4)) + int(name[1]), loudness_lufs=float(rng.normal(-20, 3)),
                    centroid_hz=float(rng.uniform(300, 3000)), onset_decay=float(rng.uniform(0, 1) if index % 7 else
                                                                                      math.nan))
            for index, name in enumerate(names)]
    judge = CueJudge.fit(cues, names)
    raw = np.array([features(item) for item in cues])
    inputs = np.hstack([(np.where(np.isfinite(raw), raw, judge.mean) - judge.mean) / judge.scale,
                        np.ones((len(raw), 1))])
    truth = np.eye(labels)[[judge.labels.index(name) for name in names]]
    gradient = inputs.T @ (judge.probabilities(cues) - truth) / len(cues)
    gradient[:-1] += 2 * L2 * judge.weights[:-1]
    assert np.abs(gradient).max() < 1e-6
    assert judge.weights[-1].sum() == pytest.approx(0.0, abs=1e-9)  # the biases centred, as the softmax's optimum


def test_a_tempo_move_is_measured_wherever_its_ask_could_be_read():
    slower = replace(BASE, onset_rate=0.5, tempo_bpm=80.0)  # asked in onsets per second: x0.25
    output = replace(BASE, onset_rate=0.3, tempo_bpm=120.0)  # below the rate an ask is read at; the beat heard faster
    assert measures.cue_changes(BASE, slower)["tempo"] == pytest.approx(-2.0)
    assert math.isnan(measures.cue_changes(BASE, output)["tempo"])  # read alone: too few onsets
    assert measures.cue_changes(BASE, output, asked=slower)["tempo"] == pytest.approx(np.log2(0.3 / 2.0))
    silent = replace(BASE, onset_rate=0.0)
    assert measures.cue_changes(BASE, silent, asked=slower)["tempo"] == -np.inf
    unreadable = replace(BASE, onset_rate=0.2)  # an ask the meter cannot read is not scored
    assert math.isnan(measures.cue_changes(BASE, output, asked=unreadable)["tempo"])


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    from estm_core.datasets import synth
    from estm_core.datasets.layouts import read_dataset
    from estm_core.datasets.split import split_table

    folder = tmp_path_factory.mktemp("corpus")
    synth.generate(folder, contents=6, seconds=4.0, seed=3)
    split = split_table(read_dataset(folder).table, test=0.5, validation=0.0, seed=0)
    return split


def test_copy_content_scores_the_floor_and_an_oracle_the_ceiling(tiny_split, store_home):
    def oracle(pair):  # returns the true target: must score exactly what the ceiling scores
        samples, rate = audio.load(pair.target)
        return samples, rate

    summary, table = evaluation.evaluate({"oracle": oracle}, tiny_split, count=12, seed=1)
    development = summary["corpora"]["development"]
    systems = development["systems"]
    assert list(summary["corpora"]) == ["development"] and set(table["corpus"]) == {"development"}
    assert development["pairs"] == 12 and len(table) == 4 * 12 and summary["judges"]["mer"] is None  # empty store
    assert systems["oracle"] == systems["target"]
    assert development["ceiling"] == {"cue_judge": systems["target"]["judges"]["cue_judge"]["target_accuracy"]}
    assert systems["copy-content"]["loudness_direction"] == 0.0  # doing nothing never moves the loudness
    heard = systems["target"]["judges"]["cue_judge"]
    assert sum(map(sum, (row.values() for row in heard["confusion"].values()))) == heard["items"]["target_accuracy"]
    low, high = heard["intervals"]["target_accuracy"]  # 12 items: few enough to be given an interval
    assert low <= heard["target_accuracy"] <= high
    assert systems["target"]["mel_distance_db"] == 0.0 and systems["target"]["closer_than_content"] == 1.0
    assert systems["copy-content"]["closer_than_content"] == 0.0
    assert systems["copy-content"]["chroma_correlation"] == pytest.approx(1.0)
    judged = {name: systems[name]["judges"]["cue_judge"]["target_accuracy"] for name in systems}
    # the content is always in another quadrant than the target: a judge that hears the quadrants scores it low
    assert judged["copy-content"] <= 0.25 < 0.75 <= judged["target"]
    assert systems["copy-reference"]["cue_directions"]["loudness"] == 1.0  # the reference has what it asks for


def test_the_core_writes_a_transfer_report_with_nan_as_null_and_keeps_an_existing_one(tmp_path):
    import json

    from estm_core.errors import FileError
    from estm_core.evaluate import transfer_report_files, write_transfer_report

    summary = {"pairs": 2, "aea": float("nan"), "data": tmp_path / "split.csv", "spread": [1.5, float("inf")]}
    pairs = pd.DataFrame({"pea": [1, 0], "lsd_target": [2.5, math.nan]})
    written = write_transfer_report(summary, pairs, tmp_path / "report")  # the paper's metrics: no example figure
    assert written == transfer_report_files(tmp_path / "report", judged=False)
    assert json.loads(written[0].read_text()) == {"pairs": 2, "aea": None, "data": str(tmp_path / "split.csv"),
                                                  "spread": [1.5, None]}
    assert pd.read_csv(written[1]).equals(pairs)
    with pytest.raises(FileError, match="already exists"):
        write_transfer_report({"pairs": 3}, pairs, tmp_path / "report")
    assert json.loads(written[0].read_text())["pairs"] == 2
    write_transfer_report({"pairs": 3}, pairs, tmp_path / "report", force=True)
    assert json.loads(written[0].read_text()) == {"pairs": 3}


def test_the_command_judges_both_cue_systems_on_both_corpora(estm, tiny_split, tmp_path, store_home):
    import json

    from estm_core.datasets import synth

    split_path = tmp_path / "split.csv"
    tiny_split.to_csv(split_path, index=False)
    synth.generate(tmp_path / "other", contents=2, seconds=4.0, seed=11)  # a second corpus, development never saw
    held = estm("data", "split", tmp_path / "other", "-o", tmp_path / "held.csv", "--test", "1", "--quiet")
    assert held.code == 0, held.err
    result = estm("evaluate", "transfer", "--data", split_path, "--held-out", tmp_path / "held.csv", "-n", "2", "-o",
                  tmp_path / "report")
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "report" / "evaluation.json").read_text())
    assert summary["methods"] == ["cues", "cues --emotion"] and list(summary["corpora"]) == ["development", "held-out"]
    for corpus in summary["corpora"].values():
        assert corpus["pairs"] == 2 and corpus["part"] == "test"
        assert list(corpus["systems"]) == ["copy-content", "copy-reference", "cues", "cues --emotion", "target"]
        assert set(corpus["systems"]["cues --emotion"]["judges"]["cue_judge"]["per_quadrant"]) == {"Q1", "Q2", "Q3",
                                                                                                 "Q4"}
    assert summary["corpora"]["held-out"]["data"] == str(tmp_path / "held.csv")
    pairs = pd.read_csv(tmp_path / "report" / "pairs.csv")
    assert pairs.groupby("corpus")["system"].agg(set).to_dict() == {
        corpus: {"copy-content", "copy-reference", "cues", "cues --emotion", "target"}
        for corpus in ("development", "held-out")}
    assert len(pairs) == 2 * 2 * 5 and pairs["loudness_moved"].notna().all()
    assert (pairs.loc[pairs["system"] == "copy-content", "loudness_moved"] == 0).all()
    for shown in ("development:", "held-out:", "cues --emotion", "quadrant", "loudness", "artifact check identity"):
        assert shown in result.out
    artifacts = summary["artifacts"]  # the cue method on signals whose right answer is known
    assert {"identity_mel", "identity_chroma", "joins", "mode", "limiter"} <= set(artifacts)
    assert all(isinstance(check["passed"], bool) and check["limit"] is not None for check in artifacts.values())
    assert (tmp_path / "report" / "example.png").is_file()


def test_the_command_refuses_a_bad_split_range_or_held_out_corpus(estm, tiny_split, tmp_path, store_home):
    import json

    split_path = tmp_path / "split.csv"
    tiny_split.to_csv(split_path, index=False)
    result = estm("evaluate", "transfer", "--data", split_path, "--method", "cues", "-n", "1", "-o",
                  tmp_path / "report", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert set(summary["corpora"]["development"]["systems"]) == {"copy-content", "copy-reference", "cues",
                                                                 "cues --emotion", "target"}
    for name in ("evaluation.json", "pairs.csv", "example.png"):
        assert (tmp_path / "report" / name).is_file()
    again = estm("evaluate", "transfer", "--data", split_path, "-n", "3", "-o", tmp_path / "report")
    assert again.code == 1 and "already exists" in again.err
    unknown = estm("evaluate", "transfer", "--data", split_path, "--method", "nope", "-o", tmp_path / "other")
    assert unknown.code == 1 and "known: cues" in unknown.err and len(unknown.err.strip().splitlines()) == 1
    loud = estm("evaluate", "transfer", "--data", split_path, "--range", "loud", "-o", tmp_path / "other")
    assert loud.code == 1 and "--range must be one of natural, wide" in loud.err
    assert len(loud.err.strip().splitlines()) == 1
    same = estm("evaluate", "transfer", "--data", split_path, "--held-out", split_path, "-o", tmp_path / "other")
    assert same.code == 1 and "held-out corpus shares" in same.err and len(same.err.strip().splitlines()) == 1
    (tmp_path / "bad.csv").write_text("song_id,path\n1,a.wav\n")
    bad = estm("evaluate", "transfer", "--data", tmp_path / "bad.csv")
    assert bad.code == 1 and "bad.csv" in bad.err and len(bad.err.strip().splitlines()) == 1
    (tmp_path / "song.wav").write_bytes(b"RIFF\xbc\xff\x00binary")  # audio where a split file should be
    wrong = estm("evaluate", "transfer", "--data", tmp_path / "song.wav")
    assert wrong.code == 1 and "not a split file" in wrong.err and "internal" not in wrong.err


def test_train_recogniser_fits_a_split_and_the_store_then_uses_it(estm, tiny_split, tmp_path, store_home):
    from estm_core.cues.meter import analyze
    from estm_core.cues.emotion import active_recogniser, shipped_path

    split_path = tmp_path / "split.csv"
    tiny_split.to_csv(split_path, index=False)
    rows = tiny_split[tiny_split["part"] == "train"]
    shipped = active_recogniser()
    assert "train part" in shipped.fitted_on and (store_home / "recogniser.json").exists() is False
    result = estm("train", "recogniser", "--data", split_path, "-q")
    assert result.code == 0, result.err
    fitted = active_recogniser()  # the store's, now
    assert fitted.fitted_on == f"{len(rows)} files ({rows['group'].nunique()} works) of a split's train part"
    heard = [fitted.recognise(analyze(path)).quadrant for path in rows["path"]]
    assert np.mean(np.array(heard) == rows["label"].to_numpy()) >= 0.75  # it learned its own training files
    again = estm("train", "recogniser", "--data", split_path, "-q")
    assert again.code == 1 and "already exists" in again.err
    copy = tmp_path / "mine.json"
    assert estm("train", "recogniser", "--data", split_path, "-o", copy, "-q").code == 0
    assert copy.read_text() == (store_home / "recogniser.json").read_text()  # the same data make the same file
    assert estm("train", "recogniser", "--data", split_path, "--part", "nope", "-o", tmp_path / "x.json").code == 1
    assert shipped_path().is_file() and not (tmp_path / "x.json").exists()
