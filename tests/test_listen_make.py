"""`estm listen make`: items from a report or from folders, a balanced seeded plan, matched audio, a folder made whole."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from estm_core import audio
from estm_core.errors import EstmError, FileError
from estm_core.listening import plan as plans
from estm_core.listening.make import design, make_test
from estm_core.listening.sources import choose, evaluation_items, folder_items
from estm_core.loudness import integrated_loudness

from listening_kit import fake_report, system_folders

SYSTEMS = ["copy-content", "copy-reference", "cues", "cues --emotion", "target"]


@pytest.fixture
def report(tmp_path):
    return fake_report(tmp_path / "evaluation")


def test_a_report_gives_every_pair_in_every_system_with_its_kept_output(report):
    items, corpus = evaluation_items(report)
    assert corpus == "development" and len(items) == 2 * 12
    for item in items:
        assert list(item.files) == SYSTEMS and item.asked in plans_quadrants()
        assert item.reference == item.files["copy-content"]  # the content is what quality is rated against
        assert item.rated == ("cues", "cues --emotion", "target")
        assert all(audio.probe(path).frames for path in item.files.values())


def plans_quadrants():
    return ("Q1", "Q2", "Q3", "Q4")


def test_a_report_without_its_outputs_or_not_a_report_is_one_line(report, tmp_path, estm):
    import shutil

    shutil.rmtree(report / "audio")
    result = estm("listen", "make", report, "-o", tmp_path / "test")
    assert result.code == 1 and "--keep-audio" in result.err and len(result.err.strip().splitlines()) == 1
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = estm("listen", "make", empty, "-o", tmp_path / "test")
    assert result.code == 1 and "holds no audio files" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "test").exists()


def test_items_are_drawn_balanced_over_the_asked_quadrants_and_seeded(report):
    items, _ = evaluation_items(report)
    chosen = choose(items, 8, seed=0)
    assert Counter(item.asked for item in chosen) == {"Q1": 2, "Q2": 2, "Q3": 2, "Q4": 2}
    assert [item.key for item in choose(items, 8, seed=0)] == [item.key for item in chosen]
    assert [item.key for item in choose(items, 8, seed=1)] != [item.key for item in chosen]
    # both excerpts' contents are used before any repeats within a quadrant's draw
    assert len({item.reference for item in chosen}) == 8


def test_the_plan_is_balanced_randomised_per_listener_and_seeded(report):
    items, _ = evaluation_items(report)
    trials, orders, stimuli = design(items, count=8, quality=4, duplicates=None, listeners=6, seed=3)
    emotion = [trial for trial in trials if trial["kind"] == plans.EMOTION and "duplicate_of" not in trial]
    duplicates = [trial for trial in trials if "duplicate_of" in trial]
    quality = [trial for trial in trials if trial["kind"] == plans.QUALITY]
    # every system on every chosen pair: 8 trials each, 2 per asked quadrant
    assert Counter(trial["system"] for trial in emotion) == {system: 8 for system in SYSTEMS}
    assert Counter((trial["system"], trial["asked"]) for trial in emotion) == \
        {(system, quadrant): 2 for system in SYSTEMS for quadrant in plans_quadrants()}
    assert len(duplicates) == 4 and len({trial["system"] for trial in duplicates}) == 4  # 10 %, systems in turn
    assert len(quality) == 4
    for trial in quality:
        assert [version["system"] for version in trial["versions"]] == \
            ["hidden reference", "anchor", "cues", "cues --emotion", "target"]
        assert trial["versions"][0]["stimulus"] == trial["reference"]  # the hidden reference is the reference
    ids = [trial["id"] for trial in trials]
    for number, order in enumerate(orders):
        assert sorted(entry["trial"] for entry in order) == sorted(ids)
        assert all(entry["trial"].startswith("e") for entry in order[:44])  # emotion first, then quality
        assert plans.duplicate_gap([_trial(trials, entry) for entry in order[:44]]) >= 44 // 3
        for entry in order[44:]:
            assert sorted(entry["versions"]) == list(range(5))
    assert orders[0] != orders[2] and orders[0][:44] != orders[2][:44]
    assert orders[1][:44] == orders[0][:44][::-1]  # every second listener hears the one before in reverse
    positions = {trial_id: [] for trial_id in ids}
    for order in orders:
        for place, entry in enumerate(order):
            positions[entry["trial"]].append(place)
    assert all(np.mean(places) == (21.5 if trial_id.startswith("e") else 45.5) for trial_id, places in
               positions.items())  # over pairs of listeners every trial stands in the middle of its block
    again = design(items, count=8, quality=4, duplicates=None, listeners=6, seed=3)
    assert again[0] == trials and again[1] == orders and again[2].ids == stimuli.ids
    assert design(items, count=8, quality=4, duplicates=None, listeners=6, seed=4)[1] != orders


def _trial(trials, entry):
    return next(trial for trial in trials if trial["id"] == entry["trial"])


def test_make_writes_loudness_matched_audio_under_opaque_names(report, tmp_path):
    items, _ = evaluation_items(report)
    test = tmp_path / "test"
    plan = make_test(items, test, made={"from": "test"}, count=4, quality=2, seed=0)
    assert plans.read_plan(test) == json.loads((test / "plan.json").read_text())
    names = sorted(path.name for path in (test / "audio").iterdir())
    assert names == sorted(f"{token}.flac" for token in plan["stimuli"])
    assert plan["made"]["level_lufs"] == -23.0
    for token, stimulus in plan["stimuli"].items():
        samples, rate = audio.load(plans.stimulus_file(test, token))
        assert integrated_loudness(samples, rate) == pytest.approx(-23.0, abs=0.1)
        assert stimulus["source"] and stimulus["treatment"] in ("original", "anchor")
    trial = next(trial for trial in plan["trials"] if trial["kind"] == plans.QUALITY)
    reference, anchor = (audio.load(plans.stimulus_file(test, version["stimulus"]))[0]
                         for version in trial["versions"][:2])
    # at 16 bits the floor is quantisation noise, some 30 dB below this band of the reference
    assert _band_db(anchor, 22050, 5000, 9000) < _band_db(reference, 22050, 5000, 9000) - 25
    assert abs(_band_db(anchor, 22050, 200, 2000) - _band_db(reference, 22050, 200, 2000)) < 3


def _band_db(samples, rate, low, high):
    spectrum = np.abs(np.fft.rfft(audio.to_mono(samples))) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    return 10 * np.log10(spectrum[(frequencies >= low) & (frequencies < high)].sum() + 1e-20)


def test_a_level_too_loud_for_the_peaks_is_lowered_for_all_and_no_match_keeps_levels(report, tmp_path):
    items, _ = evaluation_items(report)
    plan = make_test(items, tmp_path / "loud", made={}, count=2, quality=1, level=-3.0, seed=0)
    level = plan["made"]["level_lufs"]
    assert level < -3.0
    peaks = []
    for token in plan["stimuli"]:
        samples, rate = audio.load(plans.stimulus_file(tmp_path / "loud", token))
        assert integrated_loudness(samples, rate) == pytest.approx(level, abs=0.1)
        peaks.append(20 * np.log10(np.abs(samples).max()))
    assert max(peaks) == pytest.approx(-1.0, abs=0.05)  # the loudest peak sets the level
    plan = make_test(items, tmp_path / "unmatched", made={}, count=2, quality=1, match=False, seed=0)
    assert plan["made"]["level_lufs"] is None
    assert {stimulus["gain_db"] for stimulus in plan["stimuli"].values()} == {0.0}


def test_a_test_folder_is_not_overwritten_and_answers_are_never_replaced(report, tmp_path):
    items, _ = evaluation_items(report)
    test = tmp_path / "test"
    make_test(items, test, made={}, count=1, quality=0, seed=0)
    with pytest.raises(FileError, match="already exists"):
        make_test(items, test, made={}, count=1, quality=0, seed=0)
    make_test(items, test, made={}, count=2, quality=0, seed=1, force=True)
    (test / "answers" / "ann.jsonl").write_text('{"kind": "start", "order": 0}\n')
    with pytest.raises(FileError, match="holds the answers of 1 listener"):
        make_test(items, test, made={}, count=1, quality=0, seed=0, force=True)
    assert (test / "answers" / "ann.jsonl").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus", "evaluation", "test"]  # no leftovers


def test_folders_of_files_make_a_test_named_by_folder(tmp_path, estm):
    folders = system_folders(tmp_path / "music")
    items = folder_items({"a": folders["a"], "b": folders["b"]}, folders["originals"])
    assert [item.key for item in items] == ["Q1/song", "Q2/song", "Q3/song", "Q4/song"]
    assert all(item.rated == ("a", "b") and item.asked == item.key[:2] for item in items)
    result = estm("listen", "make", folders["a"], f"other={folders['b']}", "--reference", folders["originals"],
                  "-o", tmp_path / "test", "--seconds", "0.5", "--json")
    assert result.code == 0, result.err
    facts = json.loads(result.out)
    assert facts["emotion_trials"] == 8 + 2 and facts["quality_trials"] == 4 and facts["hidden_duplicates"] == 2
    plan = plans.read_plan(tmp_path / "test")
    assert {trial["system"] for trial in plan["trials"] if trial["kind"] == "emotion"} == {"a", "other"}
    assert all(stimulus["seconds"] <= 0.5 for stimulus in plan["stimuli"].values())
    assert plan["made"]["source"] == {"a": str(folders["a"].resolve()), "other": str(folders["b"].resolve())}


def test_folders_with_nothing_to_ask_and_two_systems_of_one_name_are_refused(tmp_path, estm):
    folders = system_folders(tmp_path / "music", quadrants=("Q1",))
    plain = tmp_path / "plain"
    plain.mkdir()
    (folders["a"] / "Q1" / "song.wav").rename(plain / "song.wav")
    with pytest.raises(EstmError, match="nothing to ask about"):
        folder_items({"plain": plain})
    result = estm("listen", "make", f"x={folders['a']}", f"x={folders['b']}", "-o", tmp_path / "test")
    assert result.code == 1 and "a name of its own" in result.err
