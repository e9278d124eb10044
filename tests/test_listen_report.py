"""From `estm evaluate transfer --keep-audio` to `estm listen make`: the report keeps every system's output where
the listening test finds it again. This module is itself a transfer method (`quiet`: the content 6 dB down)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from estm_core import audio, families
from estm_core.families import TransferSettings
from estm_core.listening import plan as plans
from estm_core.transfer_evaluation import Pair
from estm_core.transfer_outputs import keeping, kept_path

CUES = ("loudness",)
RANGES = {"natural": None}
MATCHES = ("emotion",)


def transfer_file(content, output, *, reference=None, quadrant=None, settings=TransferSettings(), force=False,
                  measure_output=True) -> dict:
    samples, rate = audio.load(content)
    audio.save(output, samples * np.float32(0.5), rate, force=force)
    seconds = len(samples) / rate
    return {"content": str(content), "emotion": str(reference or quadrant), "output": str(output),
            "duration": seconds, "content_duration": seconds}


def describe(result: dict) -> list[str]:
    return ["6 dB down"]


def evaluation_method(settings=TransferSettings(), *, asked="reference"):
    def run(pair):
        samples, rate = audio.load(pair.content)
        return samples * np.float32(0.5), rate

    return run


@pytest.fixture
def quiet_method(monkeypatch):
    monkeypatch.setitem(families.METHODS, "quiet", families.Method("quiet", __name__, "the content 6 dB down"))


def test_keeping_saves_each_output_once_where_kept_path_says(tmp_path):
    calls = []

    def method(pair):
        calls.append(pair)
        return np.full(800, 0.25, dtype=np.float32), 8000

    pair = Pair("bach/bwv1.6", "/c/Q1.wav", "/r/Q3.wav", "/c/Q3.wav", "Q1", "Q3")
    kept = keeping({"cues --emotion": method}, tmp_path / "audio")
    for _ in range(2):  # the example figure asks for a pair again: saved once, returned each time
        samples, rate = kept["cues --emotion"](pair)
        assert rate == 8000 and samples.max() == 0.25
    path = kept_path(tmp_path / "audio", "cues --emotion", "bach/bwv1.6", "Q1", "Q3", "/c/Q1.wav", "/r/Q3.wav")
    assert path.parent.parent == tmp_path / "audio" and path.name == "cues_--emotion.flac"
    assert path.parent.name.startswith("bach_bwv1.6-Q1-Q3-")
    assert audio.load(path)[0].max() == pytest.approx(0.25, abs=1e-4) and len(calls) == 2
    other = kept_path(tmp_path / "audio", "cues --emotion", "bach/bwv1.6", "Q1", "Q3", "/c/Q1.wav", "/r/Q4.wav")
    assert other.parent != path.parent  # another reference, another pair


def test_a_kept_report_becomes_a_listening_test(estm, tmp_path, store_home, quiet_method):
    from estm_core.datasets import synth
    from estm_core.datasets.layouts import read_dataset
    from estm_core.datasets.split import split_table

    synth.generate(tmp_path / "corpus", contents=4, seconds=3.2, seed=5)
    split_path = tmp_path / "split.csv"
    split_table(read_dataset(tmp_path / "corpus").table, test=0.5, validation=0.0, seed=0).to_csv(split_path,
                                                                                                  index=False)
    report = tmp_path / "report"
    result = estm("evaluate", "transfer", "--data", split_path, "--method", "quiet", "-n", "4", "-o", report,
                  "--keep-audio", "-q")
    assert result.code == 0, result.err
    kept = sorted(path.relative_to(report / "audio").as_posix() for path in (report / "audio").rglob("*.flac"))
    assert len(kept) == 4 * 2 and sum(name.endswith("/quiet.flac") for name in kept) == 4
    again = estm("evaluate", "transfer", "--data", tmp_path / "cache", "--pairs", split_path, "--keep-audio", "-o",
                 tmp_path / "r2")
    assert again.code == 1 and "--keep-audio are for the judged transfer" in again.err
    made = estm("listen", "make", report, "-o", tmp_path / "test", "--json")
    assert made.code == 0, made.err
    facts = json.loads(made.out)
    assert facts["emotion_trials"] == 4 * 5 + 2 and facts["quality_trials"] == 4
    plan = plans.read_plan(tmp_path / "test")
    assert {trial["system"] for trial in plan["trials"] if trial["kind"] == "emotion"} == \
        {"copy-content", "copy-reference", "quiet", "quiet --emotion", "target"}
    sources = {stimulus["source"] for stimulus in plan["stimuli"].values()}
    assert {str(report / "audio" / name) for name in kept} <= sources
