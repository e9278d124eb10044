"""A second transfer method is one table entry and one module: this module is one (a gain and nothing else), entered
in families.METHODS for the test, and `estm transfer` and `estm evaluate transfer` run it through the contract
(families.TransferMethod) as they run the cue method."""

from __future__ import annotations

import json

import numpy as np
import pytest

from estm_core import audio, families
from estm_core.families import TransferSettings
from estm_core.loudness import integrated_loudness

from conftest import tone, write

# --------------------------------------------------------------------------- the method: what a new one would write

CUES = ("loudness",)
RANGES = {"natural": 6.0, "wide": 12.0}  # the gain, in dB, of a whole move
MATCHES = ("emotion",)


def _gain_db(samples, rate, reference, quadrant, settings: TransferSettings) -> float:
    """Louder toward an excited quadrant (or a louder reference), softer toward a calm one (or a softer reference)."""
    if quadrant is not None:
        louder = quadrant in ("Q1", "Q2")
    else:
        louder = integrated_loudness(*audio.load(reference)) > integrated_loudness(samples, rate)
    return (1.0 if louder else -1.0) * settings.strength * RANGES[settings.range]


def transfer_file(content, output, *, reference=None, quadrant=None, settings=TransferSettings(), force=False,
                  measure_output=True) -> dict:
    from estm_core.files import check_writable

    output = check_writable(output, force)
    samples, rate = audio.load(content)
    gain = _gain_db(samples, rate, reference, quadrant, settings)
    audio.save(output, samples * np.float32(10 ** (gain / 20)), rate, force=force)
    seconds = len(samples) / rate
    return {"content": str(content), "emotion": str(reference) if reference is not None else quadrant,
            "output": str(output), "duration": seconds, "content_duration": seconds, "gain_db": gain}


def describe(result: dict) -> list[str]:
    return [f"gain {result['gain_db']:+.1f} dB"]


def evaluation_method(settings=TransferSettings(), *, asked="reference"):
    def run(pair):
        samples, rate = audio.load(pair.content)
        reference, quadrant = (pair.reference, None) if asked == "reference" else (None, pair.target_quadrant)
        return samples * np.float32(10 ** (_gain_db(samples, rate, reference, quadrant, settings) / 20)), rate

    return run


# ------------------------------------------------------------------------------------------------------ the tests


@pytest.fixture
def gain_method(monkeypatch):
    """This module, entered in the methods table as `gain`."""
    monkeypatch.setitem(families.METHODS, "gain", families.Method("gain", __name__, "a gain and nothing else"))


def test_this_module_and_the_cue_method_keep_the_contract():
    import sys

    assert isinstance(sys.modules[__name__], families.TransferMethod)
    assert isinstance(families.method_module("cues"), families.TransferMethod)
    assert not isinstance(families, families.TransferMethod)


def test_estm_transfer_runs_a_registered_method(estm, tmp_path, gain_method):
    content = write(tmp_path / "content.wav", tone(2.0, 8000, amplitude=0.1), 8000)
    result = estm("transfer", content, "--method", "gain", "--emotion", "Q1", "-o", tmp_path / "q1.wav", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["gain_db"] == 6.0
    louder, _ = audio.load(tmp_path / "q1.wav")
    assert np.abs(louder).max() == pytest.approx(0.2, abs=0.01)
    softer = estm("transfer", content, "--method", "gain", "--emotion", "Q3", "--strength", "0.5", "-o",
                  tmp_path / "q3.wav")
    assert softer.code == 0 and "gain -3.0 dB" in softer.err and "wrote" in softer.err
    for wrong, said in ((("--cues", "tempo"), "--cues: unknown tempo (known: loudness)"),
                        (("--range", "huge"), "--range must be one of natural, wide"),
                        (("--match", "cues"), "--match must be one of emotion")):
        refused = estm("transfer", content, "--method", "gain", "--emotion", "Q1", *wrong, "-o", tmp_path / "no.wav")
        assert refused.code == 1 and said in refused.err and len(refused.err.strip().splitlines()) == 1, refused.err
    assert not (tmp_path / "no.wav").exists()


def test_estm_evaluate_transfer_judges_a_registered_method(estm, tmp_path, store_home, gain_method):
    from estm_core.datasets import synth
    from estm_core.datasets.layouts import read_dataset
    from estm_core.datasets.split import split_table

    synth.generate(tmp_path / "corpus", contents=4, seconds=3.2, seed=5)  # 3 s or more: a loudness range
    split_path = tmp_path / "split.csv"
    split_table(read_dataset(tmp_path / "corpus").table, test=0.5, validation=0.0, seed=0).to_csv(split_path,
                                                                                                  index=False)
    result = estm("evaluate", "transfer", "--data", split_path, "--method", "gain", "-n", "2", "-o",
                  tmp_path / "report", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["methods"] == ["gain", "gain --emotion"] and "artifacts" not in summary
    systems = summary["corpora"]["development"]["systems"]
    assert list(systems) == ["copy-content", "copy-reference", "gain", "gain --emotion", "target"]
    assert systems["gain --emotion"]["cue_directions"]["loudness"] is not None
