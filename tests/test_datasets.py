"""Splits, segmenting into the cache, pairs and the torch Dataset, on tables written here (layouts have their own
tests)."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from estm_core import audio, windowing
from estm_core.datasets import segment as segmenting
from estm_core.datasets.cache import SegmentDataset
from estm_core.datasets.pairs import make_pairs
from estm_core.datasets.segment import SegmentSettings, open_cache, segment_split
from estm_core.datasets.split import read_split, split_from_original, split_table
from estm_core.errors import EstmError

from conftest import tone, write

SMALL = SegmentSettings(sample_rate=8000, segment_length=8000)  # 1 s segments at 8 kHz


def song_table(counts: dict[str, int]) -> pd.DataFrame:
    """counts per label -> a table of songs (no audio needed for splitting)."""
    rows = [
        {"song_id": f"{label}-{k}", "path": f"/x/{label}-{k}.wav", "label": label, "group": f"{label}-{k}"}
        for label, count in counts.items() for k in range(count)
    ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------ split


def test_split_is_stratified_by_label_within_one_song():
    table = song_table({"Q1": 225, "Q2": 225, "Q3": 225, "Q4": 225})
    split = split_table(table, test=0.2, validation=0.08, seed=0)
    counts = split.groupby(["label", "part"]).size().unstack()
    assert (counts["test"] == 45).all() and (counts["validation"] == 18).all() and (counts["train"] == 162).all()
    uneven = split_table(song_table({"a": 17, "b": 6, "c": 3}), test=0.2, validation=0.1, seed=1)
    for label, group in uneven.groupby("label"):
        assert abs((group["part"] == "test").sum() - 0.2 * len(group)) <= 1
        assert abs((group["part"] == "validation").sum() - 0.1 * len(group)) <= 1
    assert (split["test"] == (split["part"] == "test")).all()
    assert (split["validation"] == (split["part"] == "validation")).all()


def test_split_is_deterministic_per_seed():
    table = song_table({"Q1": 40, "Q2": 40})
    first, again = split_table(table, seed=3), split_table(table, seed=3)
    other = split_table(table, seed=4)
    assert first["part"].tolist() == again["part"].tolist()
    assert first["part"].tolist() != other["part"].tolist()


def test_split_keeps_a_group_in_one_part():
    rows = [{"song_id": f"c{c}-{q}", "path": "", "label": q, "group": f"c{c}"} for c in range(20) for q in "ABCD"]
    split = split_table(pd.DataFrame(rows), test=0.2, validation=0.1, seed=0)
    assert (split.groupby("group")["part"].nunique() == 1).all()
    assert split.groupby("part")["group"].nunique().to_dict() == {"test": 4, "validation": 2, "train": 14}


def test_split_rejects_impossible_fractions():
    with pytest.raises(EstmError, match="leave songs to train on"):
        split_table(song_table({"a": 5}), test=0.6, validation=0.5)
    with pytest.raises(EstmError, match="leave songs to train on"):
        split_table(song_table({"a": 5}), test=1.0, validation=0.1)


def test_a_held_out_corpus_is_split_all_test():
    split = split_table(song_table({"a": 5, "b": 3}), test=1.0, validation=0.0)
    assert set(split["part"]) == {"test"} and len(split) == 8


def test_original_split_files_map_onto_local_songs(tmp_path):
    deam = tmp_path / "deam_split.csv"
    deam.write_text(
        "song_id,valence_mean,valence_std,arousal_mean,arousal_std,test,validation,Q1,Q2,Q3,Q4\n"
        "2,3.1,0.94,3.0,0.63,0,0,0,0,1,0\n3,3.5,1.75,3.3,1.62,1,0,0,0,1,0\n"
        "4,5.7,1.42,5.5,1.63,0,1,1,0,0,0\n5,4.4,2.01,5.3,1.85,1,1,0,1,0,0\n999,5,1,5,1,0,0,1,0,0,0\n"
    )
    local = pd.DataFrame({"song_id": ["2", "3", "4", "5", "7"], "path": [""] * 5, "label": ["Q3"] * 5,
                          "group": ["2", "3", "4", "5", "7"]})
    split, not_found, both = split_from_original(local, deam)
    assert dict(zip(split["song_id"], split["part"])) == {"2": "train", "3": "test", "4": "validation", "5": "test"}
    assert not_found == ["999"] and both == 1

    taffc = tmp_path / "mer_taffc_split.csv"
    taffc.write_text(
        "path,quadrant,test,validation\n"
        "data\\MER_taffc_as_wav\\Q1\\MT0000040632.wav,Q1,0,0\n"
        "data\\MER_taffc_as_wav\\Q2\\MT0000082187.wav,Q2,1,0\n"
    )
    local = pd.DataFrame({"song_id": ["MT0000040632", "MT0000082187"], "path": ["a", "b"], "label": ["Q1", "Q2"],
                          "group": ["MT0000040632", "MT0000082187"]})
    split, not_found, _ = split_from_original(local, taffc)
    assert split["part"].tolist() == ["train", "test"] and not_found == []


def test_split_csv_round_trip_keeps_ids_as_strings(tmp_path):
    split = split_table(pd.DataFrame({"song_id": ["007", "010"], "path": ["a", "b"], "label": ["x", "x"],
                                      "group": ["007", "010"]}), test=0.5, validation=0.0)
    split.to_csv(tmp_path / "s.csv", index=False)
    assert read_split(tmp_path / "s.csv")["song_id"].tolist() == ["007", "010"]


# --------------------------------------------------------------------------------------------------- segmenting


def test_a_45_second_song_gives_the_paper_s_4_segments():
    """The paper zero-padded a 5th segment and its silence filter dropped it (54 % padding); the end-aligned 5th
    holds only 46 % new audio, and is dropped the same way."""
    song = tone(45.0, 22050, amplitude=0.3)
    segments, positions, starts = segmenting.song_segments(song, SegmentSettings())
    assert segments.shape == (4, 222264) and positions == [0, 1, 2, 3] and starts == [0, 222264, 444528, 666792]
    assert segments.dtype == np.int16 and np.abs(segments).max() == 32767  # each segment peak-normalised


def songs_on_disk(tmp_path, count=4, seconds=2.6, rate=16000):
    """Stereo songs at 16 kHz, each a different pitch; (split table, their float audio at 8 kHz mono)."""
    rows = []
    for k in range(count):
        path = write(tmp_path / f"song{k}.wav", tone(seconds, rate, frequency=200 + 100 * k, channels=2), rate,
                     subtype="FLOAT")
        rows.append({"song_id": f"s{k}", "path": str(path), "label": "AB"[k % 2], "group": f"s{k}",
                     "part": "train" if k < count - 1 else "test"})
    return pd.DataFrame(rows)


def test_cache_round_trip_equals_the_decoded_audio_within_int16_rounding(tmp_path):
    split = songs_on_disk(tmp_path)
    result = segment_split(split, tmp_path / "cache", SMALL)
    manifest, cache = result.manifest, open_cache(tmp_path / "cache")
    # 2.6 s -> segments of 1 s: two full, and the third ends at the end, 60 % of it new audio (the paper kept its
    # zero-padded third, 40 % padding being under the 50 % zeros limit)
    assert len(manifest) == 12 and cache.shape == (12, 8000) and cache.dtype == np.int16
    assert manifest.columns[:4].tolist() == ["segment_id", "index", "position", "start"]
    row = manifest[manifest["segment_id"] == "s1-2"].iloc[0]
    assert row["start"] == 1.6 and row["label"] == "B" and row["part"] == "train"
    decoded, _ = audio.load(split["path"][1], sample_rate=8000, mono=True)
    assert len(decoded) == 20800
    expected = windowing.peak_normalise(windowing.peak_normalise(decoded)[-8000:])
    np.testing.assert_allclose(segmenting.to_float(cache[row["index"]]), expected, atol=0.5 / 32767 + 1e-6)
    assert not (tmp_path / "cache" / "songs").exists()
    assert json.loads((tmp_path / "cache" / "segments.json").read_text())["complete"] is True


def test_segmenting_resumes_skipping_finished_songs_and_lists_bad_ones(tmp_path, monkeypatch):
    split = songs_on_disk(tmp_path)
    (tmp_path / "junk.wav").write_text("not audio")
    split = pd.concat([split, pd.DataFrame([{"song_id": "junk", "path": str(tmp_path / "junk.wav"), "label": "A",
                                             "group": "junk", "part": "train"}])], ignore_index=True)
    out = tmp_path / "cache"
    calls = []
    real = segmenting._process_song

    def interrupted(song_id, *args):
        if song_id == "s2":
            raise KeyboardInterrupt  # the run is killed after two songs
        calls.append(song_id)
        return real(song_id, *args)

    monkeypatch.setattr(segmenting, "_process_song", interrupted)
    with pytest.raises(KeyboardInterrupt):
        segment_split(split, out, SMALL)
    assert calls == ["s0", "s1"] and not (out / "manifest.csv").exists() and not (out / "segments.npy").exists()

    calls.clear()
    monkeypatch.setattr(segmenting, "_process_song", lambda song_id, *args: calls.append(song_id) or real(song_id, *args))
    result = segment_split(split, out, SMALL)
    assert calls == ["s2", "s3", "junk"] and result.songs_done_before == 2
    assert result.problems == [(str(tmp_path / "junk.wav"), "not an audio file (format not recognised)")]
    assert sorted(result.manifest["song_id"].unique()) == ["s0", "s1", "s2", "s3"]

    calls.clear()
    again = segment_split(split, out, SMALL)  # finished: nothing is redone
    assert calls == [] and len(again.manifest) == len(result.manifest)
    with pytest.raises(EstmError, match="another split or other settings"):
        segment_split(split, out, SegmentSettings(sample_rate=8000, segment_length=4000))


def test_parallel_segmenting_equals_serial_and_writes_wavs(tmp_path):
    split = songs_on_disk(tmp_path, count=3)
    serial = segment_split(split, tmp_path / "one", SMALL)
    parallel = segment_split(split, tmp_path / "two", SMALL, jobs=2, write_wav=True)
    pd.testing.assert_frame_equal(serial.manifest, parallel.manifest)
    np.testing.assert_array_equal(open_cache(tmp_path / "one"), open_cache(tmp_path / "two"))
    wav = tmp_path / "two" / "wav" / "s1-0.wav"
    assert sf.info(wav).frames == 8000 and sf.info(wav).samplerate == 8000


# ------------------------------------------------------------------------------------------- dataset and pairs


def test_segment_dataset_in_a_dataloader_with_workers(tmp_path):
    split = songs_on_disk(tmp_path)
    segment_split(split, tmp_path / "cache", SMALL)
    dataset = SegmentDataset(tmp_path / "cache", part="train", labels=["A", "B"])
    assert len(dataset) == 9
    waveform, label = dataset[3]
    assert waveform.shape == (8000,) and waveform.dtype == torch.float32 and label.item() == 1
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2)
    batches = list(loader)
    assert sum(len(labels) for _, labels in batches) == 9
    torch.testing.assert_close(batches[0][0][3], waveform)
    with pytest.raises(EstmError, match="not in"):
        SegmentDataset(tmp_path / "cache", part="train", labels=["A"])


def synthemo_like_manifest():
    rows = []
    for content in range(6):
        for quadrant in ("Q1", "Q2", "Q3", "Q4"):
            for position in range(2):
                song = f"c{content}-{quadrant}"
                rows.append({"segment_id": f"{song}-{position}", "song_id": song, "group": f"c{content}",
                             "label": quadrant, "position": position, "part": "test" if content < 4 else "train"})
    return pd.DataFrame(rows)


def test_pairs_come_from_different_songs_with_known_targets():
    manifest = synthemo_like_manifest()
    pairs = make_pairs(manifest, part="test", content_dev=5, seed=0)
    assert len(pairs) == 16 and pairs["content_dev"].sum() == 5
    group = lambda segment: segment.split("-")[0]  # noqa: E731
    assert all(group(c) != group(s) for c, s in zip(pairs["content"], pairs["style"]))
    for row in pairs.itertuples():
        content_group, _, position = row.content.split("-")
        assert row.target == f"{content_group}-{row.style_label}-{position}"
    assert make_pairs(manifest, part="test", seed=0).equals(make_pairs(manifest, part="test", seed=0))
    deam_like = manifest.assign(group=manifest["song_id"])  # one label per song: no ground truth
    assert "target" not in make_pairs(deam_like, part="test").columns
