"""`estm listen results`: the statistics against values worked by hand, and the results of answers given."""

from __future__ import annotations

import json
import math

import pytest

from estm_core.errors import FileError
from estm_core.listening import statistics
from estm_core.listening.answers import AnswerBook, read_answers
from estm_core.listening.results import summarise

from listening_kit import made_test


def test_wilson_interval_of_seven_in_ten():
    # p = 0.7, n = 10, z = 1.96: centre (0.7 + z²/20) / (1 + z²/10) = 0.6444, half-width 0.2477
    figures = statistics.share(7, 10)
    assert figures["share"] == 0.7
    assert figures["interval"] == pytest.approx([0.3968, 0.8922], abs=1e-4)
    assert all(math.isnan(value) for value in statistics.share(0, 0)["interval"])


def test_fleiss_kappa_on_a_worked_example():
    # 4 items, 3 raters, 4 categories (Q1..Q4):
    #   item 1: Q1 Q1 Q1  -> P = (9 - 3) / 6 = 1
    #   item 2: Q1 Q1 Q2  -> P = (4 + 1 - 3) / 6 = 1/3
    #   item 3: Q3 Q3 Q4  -> P = 1/3
    #   item 4: Q2 Q3 Q4  -> P = 0
    # mean P = 5/12; category shares 5/12, 2/12, 3/12, 2/12 -> P_e = 42/144 = 7/24
    # kappa = (5/12 - 7/24) / (1 - 7/24) = (3/24) / (17/24) = 3/17
    counts = [[3, 0, 0, 0], [2, 1, 0, 0], [0, 0, 2, 1], [0, 1, 1, 1]]
    assert statistics.fleiss_kappa(counts) == pytest.approx(3 / 17)
    assert statistics.fleiss_kappa(counts + [[0, 0, 1, 0]]) == pytest.approx(3 / 17)  # one rating: no pair to agree
    assert statistics.fleiss_kappa([[2, 0, 0, 0], [0, 2, 0, 0]]) == pytest.approx(1.0)
    assert math.isnan(statistics.fleiss_kappa([[3, 0, 0, 0], [2, 0, 0, 0]]))  # one category: undefined
    # raters differ between items: item 1 (2 raters, agree): P = 1; item 2 (4 raters, 2 + 2): P = (4 + 4 - 4) / 12
    # = 1/3; mean 2/3; shares 4/6, 2/6 -> P_e = 20/36 = 5/9; kappa = (2/3 - 5/9) / (4/9) = 1/4
    assert statistics.fleiss_kappa([[2, 0], [2, 2]]) == pytest.approx(0.25)


def test_mean_interval_from_student_t():
    # mean 90, sd 10, n 3: t(0.975, 2) = 4.3027, half-width 4.3027 * 10 / sqrt(3) = 24.84
    figures = statistics.mean_interval([80, 90, 100])
    assert figures["mean"] == 90 and figures["interval"] == pytest.approx([65.16, 114.84], abs=0.01)
    assert math.isnan(statistics.mean_interval([70])["interval"][0])


def test_post_screening_and_duplicates_exclude_by_their_rules():
    assert not statistics.post_screening([100, 95, 85, 100, 100, 100, 100])["excluded"]  # 1 of 7 = 14 %
    screened = statistics.post_screening([100, 85, 80, 100, 100])  # 2 of 5 = 40 % below 90
    assert screened["excluded"] and screened["below"] == 2
    assert not statistics.post_screening([])["excluded"]
    assert not statistics.consistency([("Q1", "Q1"), ("Q2", "Q3")])["excluded"]  # half agree: kept
    assert statistics.consistency([("Q1", "Q2"), ("Q2", "Q3"), ("Q4", "Q4")])["excluded"]


@pytest.fixture
def small_test(tmp_path, estm):
    """Two systems (a, b) on four songs, one per quadrant, with their originals; 2 hidden duplicates."""
    return made_test(tmp_path, estm, listeners=4)


def answer_all(book: AnswerBook, listener: str, quadrant_for, rating_for) -> None:
    """Give every answer of `listener`'s order: quadrant_for(trial), rating_for(system) for each version."""
    book.begin(listener)
    answered, total = book.progress(listener)
    for position in range(answered, total):
        trial, entry = book.entry(listener, position)
        if trial["kind"] == "emotion":
            book.record(listener, position, {"quadrant": quadrant_for(trial), "arousal": 0.5})
        else:
            shown = [trial["versions"][version]["system"] for version in entry["versions"]]
            book.record(listener, position, {"ratings": [rating_for(system) for system in shown]})


def test_results_of_given_answers_are_what_was_given(small_test, estm):
    from estm_core.listening.plan import read_plan

    book = AnswerBook(small_test, read_plan(small_test))
    ratings = {"hidden reference": 100, "anchor": 20, "a": 80, "b": 50}
    # ann: system a heard as asked, b always Q1; bob the same except b always Q3; cat rates the hidden reference 60
    answer_all(book, "ann", lambda trial: trial["asked"] if trial["system"] == "a" else "Q1", ratings.get)
    answer_all(book, "bob", lambda trial: trial["asked"] if trial["system"] == "a" else "Q3", ratings.get)
    answer_all(book, "cat", lambda trial: trial["asked"], lambda system: 60 if system == "hidden reference" else 70)
    # dan answers each hidden duplicate otherwise than its first showing (0 of 2 agree)
    answer_all(book, "dan", lambda trial: ("Q2" if trial["asked"] == "Q1" else "Q1") if trial.get("duplicate_of")
               else trial["asked"], ratings.get)
    summary, emotion, quality = summarise(small_test)
    assert summary["listeners"] == {
        "started": 4, "finished": 4, "kept": 2,
        "excluded": {"cat": ["hidden reference below 90 in more than 15 % of trials"],
                     "dan": ["different answers to half or more of the hidden duplicates"]}}
    assert summary["per_listener"]["dan"]["duplicates"] == {"duplicates": 2, "agree": 0, "share": 0.0,
                                                            "excluded": True}
    a, b = summary["systems"]["a"], summary["systems"]["b"]
    assert a["identified"]["share"] == 1.0 and a["identified"]["items"] == 8  # 4 songs x 2 listeners
    # b: asked Q1..Q4 once each; ann says Q1 (1 hit), bob Q3 (1 hit): 2 of 8
    assert b["identified"]["share"] == 0.25 and b["identified"]["interval"] == pytest.approx(
        list(statistics.share(2, 8)["interval"]))
    # arousal: Q1 and Q2 high; ann's Q1 is right for Q1, Q2; bob's Q3 for Q3, Q4: 4 of 8; valence likewise
    assert b["arousal"]["share"] == 0.5 and b["valence"]["share"] == 0.5
    assert b["confusion"]["Q2"] == {"Q1": 1, "Q2": 0, "Q3": 1, "Q4": 0}
    assert a["arousal_slider"]["mean"] == 0.5
    assert a["quality"]["mean"] == 80 and a["quality"]["items"] == 8 and summary["systems"]["anchor"]["quality"][
        "mean"] == 20
    # agreement over a's and b's 8 trials: a's 4 trials agree (P = 1), b's disagree (P = 0): mean 1/2; shares:
    # Q1 (2 + 1 + 0) ... every quadrant has a's 2 answers, b's add Q1 x 4 and Q3 x 4 -> 6/16, 2/16, 6/16, 2/16
    # P_e = (36 + 4 + 36 + 4) / 256 = 5/16; kappa = (1/2 - 5/16) / (11/16) = 3/11
    assert summary["agreement"]["fleiss_kappa"] == pytest.approx(3 / 11)
    assert a["fleiss_kappa"] == pytest.approx(1.0)
    assert len(emotion) == 4 * 10 and len(quality) == 4 * 4 * 4


def test_results_command_writes_its_files_and_refuses_to_overwrite(small_test, estm):
    from estm_core.listening.plan import read_plan

    result = estm("listen", "results", small_test)
    assert result.code == 1 and "no answers yet" in result.err
    answer_all(AnswerBook(small_test, read_plan(small_test)), "ann", lambda trial: trial["asked"],
               lambda system: 100 if system == "hidden reference" else 50)
    result = estm("listen", "results", small_test, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert [name.rsplit("/", 1)[1] for name in summary["files"]] == \
        ["results.json", "results.csv", "answers.csv", "results.png"]
    assert all((small_test / "results" / name).stat().st_size for name in ("results.png", "answers.csv"))
    assert (small_test / "results" / "results.csv").read_text().startswith("system,identified_n,identified,")
    again = estm("listen", "results", small_test)
    assert again.code == 1 and "already exists (use --force" in again.err
    table = estm("listen", "results", small_test, "--force")
    assert table.code == 0 and "1.00 (0.51-1.00)" in table.out and "excluded" not in table.out


def test_a_folder_that_is_not_a_test_is_one_line(tmp_path, estm):
    for command in ("results", "serve"):
        result = estm("listen", command, tmp_path)
        assert result.code == 1 and "not a listening test" in result.err and len(result.err.splitlines()) == 1
        missing = estm("listen", command, tmp_path / "nowhere")
        assert missing.code == 1 and "no such folder" in missing.err
    (tmp_path / "plan.json").write_text('{"format": "estm listening test", "version": 1, "stimuli": 3}')
    result = estm("listen", "results", tmp_path)
    assert result.code == 1 and "not a listening test's plan" in result.err and "Traceback" not in result.err
    (tmp_path / "plan.json").write_text("{not json")
    assert "cannot read it as JSON" in estm("listen", "results", tmp_path).err
    with pytest.raises(FileError):
        summarise(tmp_path)
    assert read_answers(tmp_path) == {}
