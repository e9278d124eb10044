"""SynthEmo end to end, small: synth -> read the layout -> split by content -> segment -> train -> held-out accuracy;
and the same through the `estm` command."""

import json

import pytest

from estm_core.datasets import synth
from estm_core.datasets.layouts import read_dataset
from estm_core.datasets.segment import SegmentSettings, segment_split
from estm_core.datasets.split import split_table
from estm_core.evaluate import evaluate_classifier
from estm_core.features import FeatureSettings
from estm_core.training.classifier import train_classifier
from estm_core.training.loop import TrainConfig


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory):
    """16 contents x 4 quadrants, 4 s at 8 kHz, in 2 s segments; 4 contents held out for test."""
    folder = tmp_path_factory.mktemp("synthemo")
    synth.generate(folder / "corpus", contents=16, seconds=4.0, sample_rate=8000)
    dataset = read_dataset(folder / "corpus")
    assert dataset.layout == "synthemo" and len(dataset.table) == 64 and not dataset.problems
    split = split_table(dataset.table, test=0.25, validation=0.0, seed=0)
    assert split.groupby("group")["part"].nunique().max() == 1  # a content's four renderings stay together
    segment_split(split, folder / "cache", SegmentSettings(sample_rate=8000, segment_length=16000))
    return folder / "cache"


def test_a_tiny_classifier_learns_the_quadrants_of_held_out_contents(synth_cache, store_home):
    config = TrainConfig(epochs=12, batch_size=16, lr=3e-3, seed=0)
    result = train_classifier("gems", synth_cache, "synth-tiny", config,
                              feature_settings=FeatureSettings(n_fft=512, hop_length=128, n_mels=48),
                              model_options={"blocks": (1, 1, 1), "widths": (16, 32, 64)})
    history = result.history
    assert history["loss"].iloc[-3:].mean() < 0.7 * history["loss"].iloc[0]
    summary, _ = evaluate_classifier("synth-tiny", synth_cache, part="test")
    assert summary["count"] == 32 and summary["chance"] == 0.25
    assert summary["accuracy"] >= 0.6, summary["accuracy"]  # chance is 0.25; unseen contents


def test_the_data_commands_end_to_end(estm, tmp_path):
    corpus, split, cache = tmp_path / "corpus", tmp_path / "split.csv", tmp_path / "cache"
    assert estm("data", "synth", "-o", corpus, "--source", "tones", "--count", "5", "--seconds", "2", "-q").code == 0
    assert estm("data", "split", corpus, "-o", split, "--test", "0.2", "--val", "0.2").code == 0
    again = estm("data", "split", corpus, "-o", split)
    assert again.code == 1 and "already exists" in again.err
    made = estm("data", "segment", split, "-o", cache, "--jobs", "2", "--seconds", "1")
    assert made.code == 0 and (cache / "segments.npy").exists()
    assert json.loads((cache / "segments.json").read_text())["segments"] == 40
    assert estm("data", "pairs", "--data", cache, "-o", tmp_path / "pairs.csv", "--part", "train").code == 0
    assert (tmp_path / "pairs.csv").read_text().splitlines()[0] == (
        "content,style,content_dev,content_label,style_label,target")
