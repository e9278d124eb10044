"""The listening test in a real browser: headless Chromium driven by selenium, with the keyboard, through a server
that is killed midway and started again; then the results files. Screenshots of each trial kind go to
$ESTM_TEST_ARTIFACTS (else the test's own folder).

Skipped where Chromium, chromedriver or selenium is missing, except under CI=true, where that fails: CI installs
them (.ci/run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from estm_core.listening.plan import read_plan

from listening_browser import PageListener, browser_missing, open_browser, take_test
from listening_kit import ServerProcess, fake_report, request

# what the driver answers, by system: a quadrant (None: the asked one) and each system's rating
QUADRANT_GIVEN = {"copy-content": "Q1", "copy-reference": "Q2", "cues": None, "cues --emotion": "Q3", "target": None}
RATING_GIVEN = {"hidden reference": 100, "anchor": 15, "cues": 70, "cues --emotion": 60, "target": 85}


@pytest.fixture
def browser():
    missing = browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test needs {missing}; CI installs it (.ci/run)")
        pytest.skip(f"no {missing}")
    driver = open_browser()
    yield driver
    driver.quit()


def policy(plan: dict, order: list[dict]):
    """The driver's answers to the listener's trials, from what it is told about each (QUADRANT_GIVEN,
    RATING_GIVEN); the first emotion trial also moves both sliders."""
    trials = {trial["id"]: trial for trial in plan["trials"]}

    def answer(view: dict):
        trial = trials[order[view["position"]]["trial"]]
        if trial["kind"] == "emotion":
            quadrant = QUADRANT_GIVEN[trial["system"]] or trial["asked"]
            return quadrant[1], (10, -20) if view["position"] == 0 else None  # valence +0.5, arousal -1
        shown = order[view["position"]]["versions"]
        return [RATING_GIVEN[trial["versions"][version]["system"]] for version in shown]

    return answer


def test_a_listener_takes_the_test_by_keyboard_through_a_killed_server(tmp_path, browser, estm):
    report = fake_report(tmp_path / "evaluation", seconds=1.0)
    test = tmp_path / "test"
    made = estm("listen", "make", report, "-o", test, "-n", "2", "--quality", "1", "--listeners", "4", "-q")
    assert made.code == 0, made.err
    plan = read_plan(test)
    total = len(plan["trials"])
    assert total == 2 * 5 + 2 + 1
    shots = Path(os.environ.get("ESTM_TEST_ARTIFACTS") or tmp_path / "screenshots")
    server = ServerProcess(test)
    try:
        base = server.start()
        page = PageListener(browser, base, shots)
        where = page.open("ann", shot="welcome")
        assert where["trial"]["position"] == 0 and where["progress"] == f"listener ann \u00b7 0 of {total} answered"
        order = plan["orders"][json.loads((test / "answers" / "ann.jsonl").read_text().splitlines()[0])["order"]]
        answer = policy(plan, order)
        where = take_test(page, answer, until=5, shots={"emotion": "emotion"})
        assert where["trial"]["position"] == 5

        page.wait("players.every((player) => player.readyState === 4)")  # its audio is in the page already
        server.kill()  # mid-test, and the next answer is given while it is down
        key, sliders = answer(where["trial"])
        page.answer_emotion(key, sliders)
        page.wait("$('status').classList.contains('error')")
        assert "Not saved yet" in page.script("$('status').textContent")
        page.screenshot("server-down")
        assert len(_answers(test, "ann")) == 5  # the five given before: all on disk
        server.start()  # on the same port; the page sends the kept answer again
        where = page.moved_on(5)
        assert where["trial"]["position"] == 6 and len(_answers(test, "ann")) == 6

        _, bob = request(base + "api/start", {"listener": "bob"})  # a second listener, at the same time
        where = page.open("ANN")  # the tab closed and opened again: ann resumes with her id
        assert where["listener"] == "ann" and where["trial"]["position"] == 6
        where = take_test(page, answer, shots={"quality": "quality"})
        assert where["trial"] is None and page.script("!$('done').hidden")
        page.screenshot("done")
        _bob_rates_the_hidden_reference_low(base, bob, total)
    finally:
        server.stop()

    records = _answers(test, "ann")
    assert [record["position"] for record in records] == list(range(total))  # each trial once, none lost
    assert records[0]["valence"] == 0.5 and records[0]["arousal"] == -1.0
    result = estm("listen", "results", test, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert all(Path(path).stat().st_size for path in summary["files"])
    _check_results(summary, plan, order)
    assert {path.name for path in shots.iterdir()} >= {"welcome.png", "emotion.png", "quality.png",
                                                       "server-down.png", "done.png"}


def _answers(test: Path, listener: str) -> list[dict]:
    lines = (test / "answers" / f"{listener}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[1:]]


def _bob_rates_the_hidden_reference_low(base: str, where: dict, total: int) -> None:
    """bob, by hand: every emotion trial Q4, every version rated 50 (the hidden reference too)."""
    while where["trial"] is not None:
        trial = where["trial"]
        given = {"quadrant": "Q4"} if trial["kind"] == "emotion" else {"ratings": [50] * len(trial["versions"])}
        status, where = request(base + "api/answer", {"listener": "bob", "position": trial["position"],
                                                      "answer": given})
        assert status == 200, where
    assert where["answered"] == total


def _check_results(summary: dict, plan: dict, order: list[dict]) -> None:
    """results.json says what ann answered (bob is excluded by the post-screening)."""
    assert summary["listeners"]["started"] == 2 and summary["listeners"]["kept"] == 1
    assert list(summary["listeners"]["excluded"]) == ["bob"]
    systems = summary["systems"]
    for system, given in QUADRANT_GIVEN.items():
        asked = [trial["asked"] for trial in plan["trials"] if trial["kind"] == "emotion" and
                 trial["system"] == system and not trial.get("duplicate_of")]
        hits = len(asked) if given is None else asked.count(given)
        assert systems[system]["identified"]["items"] == len(asked) == 2
        assert systems[system]["identified"]["share"] == hits / len(asked), system
    for system, rating in RATING_GIVEN.items():
        assert systems[system]["quality"]["mean"] == rating and systems[system]["quality"]["items"] == 1
