"""The artifact checks of the cue transfer (estm_core.transfer_artifacts): each passes on the cue method, and each
fails on an edit or a signal made to have the artifact it looks for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from estm_core import transfer_artifacts as artifacts
from estm_core.loudness import integrated_loudness
from estm_core.methods.cues.plan import PEAK, Moves

RATE = artifacts.RATE
CHECKS = ("identity_mel", "identity_chroma", "joins", "mode", "mode_third", "limiter")


@pytest.fixture(scope="module")
def results() -> dict:
    return artifacts.check_all()


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return artifacts.piece()


def test_check_all_reports_every_check_with_its_limit(results):
    assert tuple(results) == CHECKS
    for name, result in results.items():
        assert set(result) == {"value", "limit", "passed", "what"}, name
        assert isinstance(result["value"], float) and math.isfinite(result["value"]), name
        assert isinstance(result["passed"], bool) and result["what"], name


@pytest.mark.parametrize("name", CHECKS)
def test_each_check_passes_on_the_cue_method(results, name):
    assert results[name]["passed"], results[name]


def test_identity_fails_on_a_changed_copy(music):
    def changed(samples, rate, moves, **options):  # a semitone up and 2 dB louder, whatever is asked
        return artifacts.cue_edit(samples, rate, Moves(semitones=1.0, gain_db=2.0), **options)

    result = artifacts.check_identity(music, RATE, edit=changed)
    assert not result["identity_mel"]["passed"] and not result["identity_chroma"]["passed"], result
    assert artifacts.identity_distance(music, music, RATE) == pytest.approx((0.0, 1.0), abs=1e-6)


def test_a_click_at_a_block_join_or_a_piece_join_is_found(music):
    """A hard click (one sample at the ceiling) where the stream's second block or the stretch's second piece
    begins, in an edit that otherwise is the cue method's."""
    def clicking(where):
        def edit(samples, rate, moves, *, block_frames=None, segment_seconds=artifacts.JOIN_SEGMENT_S, **options):
            output = artifacts.cue_edit(samples, rate, moves, block_frames=block_frames,
                                        segment_seconds=segment_seconds, **options).copy()
            if where == "pieces" or block_frames:
                join = block_frames if where == "blocks" else round(segment_seconds * rate)
                output[round(join / moves.tempo_ratio)] = PEAK
            return output
        return edit

    for where in ("blocks", "pieces"):
        result = artifacts.check_joins(music, RATE, edit=clicking(where))["joins"]
        assert not result["passed"] and result["value"] > 1.0, (where, result)


def test_the_mode_check_passes_on_tones_of_ten_partials():
    """From 5 partials on, the root's and the fifth's 5th partials fall on degrees 3 and 7 and the third's 5th on
    none: the mode edit must tell whose partial each is (check_all has 6 partials; moving all the energy on degrees
    3, 6 and 7 left -16 dB of spurious partials with 6, -14 dB with 10)."""
    result = artifacts.check_mode(artifacts.triad(harmonics=10), RATE, harmonics=10)
    assert result["mode"]["passed"] and result["mode_third"]["passed"], result


def test_the_mode_check_fails_on_a_spurious_or_a_lost_partial():
    """A partial the triad does not have stays in the output; an edit that drops the third instead of moving it
    leaves nothing spurious, but loses the third."""
    four = artifacts.triad(harmonics=4)
    result = artifacts.check_mode(four, RATE, harmonics=4)
    assert result["mode"]["passed"] and result["mode_third"]["passed"], result
    assert result["mode"]["value"] < -40

    t = np.arange(len(four)) / RATE
    spurious = four + (0.01 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)[:, None]  # -20 dB or so
    assert not artifacts.check_mode(spurious, RATE, harmonics=4)["mode"]["passed"]
    unchanged = artifacts.check_mode(four, RATE, harmonics=4, edit=lambda samples, *_, **__: samples)
    assert not unchanged["mode"]["passed"]  # the major third is off the minor triad

    def dropping(samples, rate, moves, **options):
        return artifacts.triad(artifacts.TRIAD_HZ[::2], harmonics=4)

    dropped = artifacts.check_mode(four, RATE, harmonics=4, edit=dropping)
    assert dropped["mode"]["passed"] and not dropped["mode_third"]["passed"], dropped


def test_a_pumping_limiter_is_found(music):
    """The check's master is at -9 LUFS; a limiter that ducks 6 dB for 100 ms after every loud sample pumps."""
    master = artifacts.mastered(music, RATE)
    assert integrated_loudness(master, RATE) == pytest.approx(artifacts.LOUD_LUFS, abs=0.2)
    assert np.abs(master).max() <= PEAK

    def pumping(samples, rate, moves, *, ceiling=PEAK, **options):
        output = artifacts.cue_edit(samples, rate, moves, ceiling=math.inf, **options)
        if math.isfinite(ceiling):
            loud = (np.abs(output).max(axis=1) > 0.5).astype(float)
            ducked = np.convolve(loud, np.ones(round(0.1 * rate)))[: len(output)] > 0
            output = output * np.where(ducked, 0.5, 1.0).astype(np.float32)[:, None]
        return output

    result = artifacts.check_limiter(master, RATE, edit=pumping)["limiter"]
    assert not result["passed"] and result["value"] == pytest.approx(6.02, abs=0.05), result
