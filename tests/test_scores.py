"""The scores corpus: real works from music21's corpus, edited into the four quadrants and rendered by a SoundFont.

Each cue is measured back from the performed notes and the rendered audio, not read from the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from estm_core import audio_info
from estm_core.datasets import score_cues, score_excerpts, score_rendering, scores
from estm_core.datasets.layouts import read_dataset
from estm_core.datasets.split import split_table
from estm_core.errors import EstmError

# a major chorale with five parts, a minor one, a monophonic fiddle tune: all usable with seed 0
WORKS = ("bach/bwv1.6", "bach/bwv101.7", "ryans-mammoth/7thRegimentReel")


@pytest.fixture(scope="module")
def excerpts() -> dict[str, score_excerpts.Excerpt]:
    works = {work.name: work for work in scores.catalogue(["bach", "ryans-mammoth"])}
    found = {name: scores.excerpt_or_reason((works[name], 0, score_cues.SECONDS)) for name in WORKS}
    assert all(isinstance(excerpt, score_excerpts.Excerpt) for excerpt in found.values()), found
    return found


@pytest.fixture(scope="module")
def soundfont():
    return score_rendering.check_soundfont(None)


def centroid_hz(samples: np.ndarray, rate: int) -> float:
    power = np.abs(np.fft.rfft(samples)) ** 2
    return float((power * np.fft.rfftfreq(len(samples), 1 / rate)).sum() / power.sum())


def rms_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2))))


# ------------------------------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("tonic", [0, 2, 9])
def test_parallel_mode_moves_only_degrees_3_6_7_by_a_semitone(tonic):
    chromatic = np.arange(48, 84)
    degree = (chromatic - tonic) % 12
    to_minor = score_excerpts.to_mode(chromatic, tonic, "major", "minor")
    assert set(np.flatnonzero(to_minor != chromatic)) == set(np.flatnonzero(np.isin(degree, (4, 9, 11))))
    assert np.all(chromatic - to_minor >= 0) and np.all(chromatic - to_minor <= 1)
    to_major = score_excerpts.to_mode(chromatic, tonic, "minor", "major")
    assert set(np.flatnonzero(to_major != chromatic)) == set(np.flatnonzero(np.isin(degree, (3, 8, 10))))
    assert np.all(to_major - chromatic >= 0) and np.all(to_major - chromatic <= 1)
    np.testing.assert_array_equal(score_excerpts.to_mode(chromatic, tonic, "minor", "minor"), chromatic)
    # a major scale's notes round-trip: minor and back again is where they started
    major_scale = tonic + 60 + np.array([0, 2, 4, 5, 7, 9, 11])
    back = score_excerpts.to_mode(score_excerpts.to_mode(major_scale, tonic, "major", "minor"), tonic, "minor", "major")
    np.testing.assert_array_equal(back, major_scale)


def test_parallel_mode_on_a_real_excerpt_keeps_every_note_within_a_semitone(excerpts):
    excerpt = excerpts["bach/bwv1.6"]
    minor = score_excerpts.to_mode(excerpt.midi, excerpt.tonic, excerpt.mode, "minor")
    moved = minor != excerpt.midi
    assert 0 < moved.mean() < 0.5 and np.all(np.abs(minor - excerpt.midi) <= 1)
    assert set(((excerpt.midi[moved] - excerpt.tonic) % 12).tolist()) <= {4, 9, 11}
    assert score_excerpts.key_of(excerpt.midi, excerpt.duration_quarters)[:2] == (excerpt.tonic, "major")
    assert score_excerpts.key_of(minor, excerpt.duration_quarters)[:2] == (excerpt.tonic, "minor")


def test_key_finding_agrees_with_music21(excerpts):
    from music21 import note, stream

    rng = np.random.default_rng(3)
    cases = [(rng.integers(48, 84, 30), rng.choice([0.5, 1.0, 2.0], 30)) for _ in range(6)]
    cases.append((excerpts["bach/bwv101.7"].midi, excerpts["bach/bwv101.7"].duration_quarters))
    for midi, duration in cases:
        notes = stream.Stream()
        for key, length in zip(midi.tolist(), duration.tolist()):
            notes.append(note.Note(key, quarterLength=length))
        theirs = notes.analyze("key")
        tonic, mode, correlation = score_excerpts.key_of(midi, duration)
        assert (tonic, mode) == (theirs.tonic.pitchClass, theirs.mode)
        assert correlation == pytest.approx(theirs.correlationCoefficient, abs=1e-6)


def test_works_group_their_movements_and_the_catalogue_is_large():
    works = scores.catalogue()
    assert len(works) >= 1000 and len({work.collection for work in works}) == len(scores.COLLECTIONS)
    names = {work.name: work for work in works}
    assert len(names["quartets/mozart/k155"].files) == 3  # a quartet's movements are one work
    assert all("_25" in file for file in names["palestrina/mass025"].files)  # a mass's sections are one work
    order = scores.candidates(works, seed=0)
    assert len({work.collection for work in order[: len(scores.COLLECTIONS)]}) == len(scores.COLLECTIONS)
    assert order[:20] == scores.candidates(works, seed=0)[:20] != scores.candidates(works, seed=1)[:20]


def test_an_excerpt_starts_on_a_bar_line_and_holds_enough_notes_for_the_fastest_rendering(excerpts):
    for excerpt in excerpts.values():
        assert excerpt.onset_quarters.min() == 0  # the bar line it starts on
        assert np.unique(excerpt.onset_quarters).size == score_excerpts.onsets_needed(score_cues.SECONDS)
        fastest = max(cue.notes_per_second for cue in score_cues.CUES.values()) * score_cues.SPREAD.tempo_ratio
        assert np.unique(excerpt.onset_quarters).size / fastest > score_cues.SECONDS


# -------------------------------------------------------------------------------------- the quadrants' cues


def test_each_quadrant_follows_the_tables_directions(excerpts, soundfont):
    """With the spread off, each cue measured from the notes and the audio goes the way the table says."""
    for name, excerpt in excerpts.items():
        measured = {}
        for quadrant, cues in score_cues.CUES.items():
            played = score_rendering.perform(excerpt, cues, np.random.default_rng(0), score_cues.NO_SPREAD)
            samples, drawn = score_rendering.render(excerpt, cues, np.random.default_rng(0), soundfont=soundfont,
                                                    spread=score_cues.NO_SPREAD)
            assert samples.shape == (round(score_cues.SECONDS * score_cues.SAMPLE_RATE),)
            assert np.abs(samples).max() <= 0.98
            onsets = np.unique(played.onset_s)
            measured[quadrant] = {
                "rate": onsets.size / score_cues.SECONDS,  # onsets heard per second, from the notes
                "mode": score_excerpts.key_of(played.midi, played.sounding_s)[1],
                "level": rms_db(samples), "centroid": centroid_hz(samples, score_cues.SAMPLE_RATE),
                "pitch": played.midi.mean(),
            }
            assert measured[quadrant]["mode"] == cues.mode, (name, quadrant)
            assert measured[quadrant]["rate"] == pytest.approx(cues.notes_per_second, rel=0.15), (name, quadrant)
        high, low = ("Q1", "Q2"), ("Q3", "Q4")
        for cue in ("rate", "level", "centroid"):
            assert min(measured[q][cue] for q in high) > max(measured[q][cue] for q in low), (name, cue, measured)
        assert measured["Q3"]["rate"] < measured["Q4"]["rate"]  # sadness slowest
        assert measured["Q1"]["pitch"] > measured["Q2"]["pitch"] > measured["Q3"]["pitch"]  # register


def test_articulation_sets_how_long_notes_sound(excerpts):
    excerpt = excerpts["ryans-mammoth/7thRegimentReel"]
    for cues in score_cues.CUES.values():
        played = score_rendering.perform(excerpt, cues, np.random.default_rng(0), score_cues.NO_SPREAD)
        beat_s = 60 / played.cues["tempo_qpm"]
        written = excerpt.duration_quarters[: played.onset_s.size] * beat_s
        ratio = np.median(played.sounding_s / written)
        assert ratio == pytest.approx(max(cues.articulation, 0.15), abs=0.05)


def test_no_single_cue_separates_the_quadrants(excerpts):
    """Over many renderings, for every cue some two quadrants' ranges overlap, and loud and soft overlap in level."""
    excerpt = excerpts["bach/bwv1.6"]
    drawn = {quadrant: pd.DataFrame([
        score_rendering.perform(excerpt, cues, np.random.default_rng(seed)).cues for seed in range(60)])
        for quadrant, cues in score_cues.CUES.items()}
    for cue in ("notes_per_second", "velocity", "level_db", "articulation", "register_octaves", "mode"):
        values = {q: set(frame[cue]) if cue == "mode" else (frame[cue].min(), frame[cue].max())
                  for q, frame in drawn.items()}
        overlapping = [(a, b) for a in values for b in values if a < b and (
            values[a] & values[b] if cue == "mode" else values[a][0] <= values[b][1] and values[b][0] <= values[a][1])]
        assert overlapping, (cue, values)
    loud = pd.concat([drawn["Q1"], drawn["Q2"]])["level_db"]
    soft = pd.concat([drawn["Q3"], drawn["Q4"]])["level_db"]
    assert soft.max() > loud.min() + 2


def test_a_rendering_is_the_same_for_the_same_seed(excerpts, soundfont):
    excerpt, cues = excerpts["bach/bwv101.7"], score_cues.CUES["Q2"]
    first, _ = score_rendering.render(excerpt, cues, np.random.default_rng(5), soundfont=soundfont, channels=2)
    again, _ = score_rendering.render(excerpt, cues, np.random.default_rng(5), soundfont=soundfont, channels=2)
    other, _ = score_rendering.render(excerpt, cues, np.random.default_rng(6), soundfont=soundfont, channels=2)
    assert first.shape == (round(score_cues.SECONDS * score_cues.SAMPLE_RATE), 2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.allclose(first[:, 0], first[:, 1])  # the parts are spread across the stereo field


# ------------------------------------------------------------------------------------------------ the corpus


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scores") / "corpus"
    table = scores.generate(folder, count=2, collections=["bach"], sample_rate=16000)
    return folder, table


def test_the_corpus_has_synthemos_layout_and_tables(tiny_corpus):
    folder, table = tiny_corpus
    assert len(table) == 8 and list(table["label"]) == ["Q1", "Q2", "Q3", "Q4"] * 2
    pairs = pd.read_csv(folder / "pairs.csv")
    assert list(pairs.columns) == ["content", "Q1", "Q2", "Q3", "Q4"] and len(pairs) == 2
    for row in pairs.itertuples(index=False):
        rendered = table.set_index("path").loc[[row.Q1, row.Q2, row.Q3, row.Q4]]
        assert rendered["group"].nunique() == 1 and rendered["content"].nunique() == 1
        assert list(rendered["label"]) == ["Q1", "Q2", "Q3", "Q4"]
        for path in rendered.index:
            info = audio_info.inspect(folder / path)
            assert info.problem is None and info.sample_rate == 16000 and info.channels == 1
            assert info.duration == pytest.approx(score_cues.SECONDS, abs=1e-3)
    dataset = read_dataset(folder)
    assert dataset.layout == "synthemo" and set(dataset.table["collection"]) == {"bach"}
    assert {"mode", "notes_per_second", "level_db", "articulation", "register_octaves", "instruments",
            "key", "start_bar", "file"} <= set(dataset.table.columns)


def test_a_rerun_reuses_the_corpus_and_another_is_refused(tiny_corpus):
    folder, table = tiny_corpus
    before = {path: (folder / path).stat().st_mtime_ns for path in table["path"]}
    again = scores.generate(folder, count=2, collections=["bach"], sample_rate=16000)
    pd.testing.assert_frame_equal(again[table.columns], table, check_dtype=False)
    assert {path: (folder / path).stat().st_mtime_ns for path in table["path"]} == before
    with pytest.raises(EstmError, match="holds another corpus"):
        scores.generate(folder, count=1, collections=["bach"], sample_rate=16000)


def test_the_factorial_design_balances_each_cues_levels(tmp_path):
    levels = pd.DataFrame(scores.factorial_levels(60, seed=0))
    for cue, values in score_cues.FACTORIAL.items():
        counts = levels[cue].value_counts()
        assert set(counts.index) == set(values) and counts.max() - counts.min() <= 1
    table = scores.generate(tmp_path / "factorial", count=1, collections=["bach"], factorial=True, sample_rate=16000)
    assert len(table) == scores.RENDERINGS_PER_EXCERPT and set(table["label"]) == {""}
    assert all(path.startswith("factorial/") for path in table["path"])
    assert not (tmp_path / "factorial" / "pairs.csv").exists()
    expected = pd.DataFrame(scores.factorial_levels(scores.RENDERINGS_PER_EXCERPT, seed=0))
    assert list(table["mode"]) == list(expected["mode"])
    assert list(table["dynamics_db"]) == list(expected["dynamics_db"])
    assert list(table["instruments"].str.split().str[0].astype(int)) == list(expected["instrument"])


def test_a_split_holds_out_works_or_whole_collections():
    table = pd.DataFrame({"song_id": [f"s{i}" for i in range(24)], "label": ["Q1", "Q2", "Q3", "Q4"] * 6,
                          "group": [f"w{i // 4}" for i in range(24)], "path": [f"{i}.wav" for i in range(24)],
                          "collection": ["bach"] * 8 + ["palestrina"] * 8 + ["trecento"] * 8})
    split = split_table(table, test=0.3, validation=0.0, seed=0)
    assert (split.groupby("group")["part"].nunique() == 1).all()  # a work's renderings stay together
    held = split_table(table, test=0.0, validation=0.0, seed=0, test_collections=["palestrina"])
    assert set(held.loc[held["part"] == "test", "collection"]) == {"palestrina"}
    assert (held.loc[held["collection"] == "palestrina", "part"] == "test").all()
    with pytest.raises(EstmError, match="no collection mozart"):
        split_table(table, test_collections=["mozart"])


def test_a_missing_or_broken_soundfont_gets_one_line(estm, tmp_path):
    result = estm("data", "synth", "-o", tmp_path / "a", "--soundfont", tmp_path / "none.sf2", "-n", "1")
    assert result.code == 1 and "none.sf2: no such SoundFont file" in result.err
    assert len(result.err.strip().splitlines()) == 1
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    result = estm("data", "synth", "-o", tmp_path / "b", "--soundfont", broken, "-n", "1")
    assert result.code == 1 and "broken.sf2: not a readable SoundFont" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
