"""`estm listen serve`: the API, answers checked and kept, nothing outside the test served, a killed server, a port
in use."""

from __future__ import annotations

import json
import socket

import pytest

from estm_core.listening.plan import read_plan

from listening_kit import ServerProcess, made_test, request, served


@pytest.fixture
def test_folder(tmp_path, estm):
    return made_test(tmp_path, estm, listeners=3)


def lines(test, listener):
    return (test / "answers" / f"{listener}.jsonl").read_text().splitlines()


def test_listeners_start_answer_and_resume_each_in_their_own_order(test_folder):
    plan = read_plan(test_folder)
    with served(test_folder) as (base, events):
        status, setup = request(base + "api/setup")
        assert status == 200 and [q["words"] for q in setup["quadrants"]] == \
            ["happy, excited", "angry, tense", "sad, depressed", "calm, relaxed"] and setup["trials"] == 14
        status, ann = request(base + "api/start", {"listener": " Ann "})
        assert status == 200 and ann["listener"] == "ann" and ann["answered"] == 0 and ann["total"] == 14
        _, new = request(base + "api/start", {"listener": ""})
        assert len(new["listener"]) == 6 and new["listener"] != "ann"
        assert ann["trial"] == {"kind": "emotion", "position": 0, "audio": "/audio/ann/0/clip"}
        status, after = request(base + "api/answer", {"listener": "ann", "position": 0,
                                                      "answer": {"quadrant": "Q2", "valence": -0.5}})
        assert status == 200 and after["answered"] == 1 and after["trial"]["position"] == 1
        _, again = request(base + "api/start", {"listener": "ANN"})  # resumes where ann stopped
        assert again["answered"] == 1 and again["trial"] == after["trial"]
        assert "listener ann: resumed at 1 of 14 answered" in events
    start, answer = (json.loads(line) for line in lines(test_folder, "ann"))
    assert start["order"] == 0 and json.loads(lines(test_folder, new["listener"])[0])["order"] == 1
    assert answer["trial"] == plan["orders"][0][0]["trial"] and answer["quadrant"] == "Q2"
    assert answer["valence"] == -0.5 and answer["arousal"] is None
    assert plan["orders"][1][:10] == plan["orders"][0][:10][::-1]  # the second listener's own order


def test_a_quality_answer_is_kept_in_the_plans_order_of_versions(test_folder):
    plan = read_plan(test_folder)
    with served(test_folder) as (base, _):
        _, where = request(base + "api/start", {"listener": "ann"})
        while where["trial"]["kind"] == "emotion":
            _, where = request(base + "api/answer", {"listener": "ann", "position": where["answered"],
                                                     "answer": {"quadrant": "Q1"}})
        assert len(where["trial"]["versions"]) == 4 and where["trial"]["reference"].endswith("/ref")
        status, _ = request(base + "api/answer", {"listener": "ann", "position": where["answered"],
                                                  "answer": {"ratings": [10, 20, 30, 40]}})
        assert status == 200
    record = json.loads(lines(test_folder, "ann")[-1])
    shown = plan["orders"][0][where["answered"]]["versions"]
    assert record["shown"] == shown and [record["ratings"][version] for version in shown] == [10, 20, 30, 40]


def test_answers_are_checked_before_anything_is_kept():
    from estm_core.listening.answers import Rejected, emotion_answer, listener_id, quality_answer

    assert emotion_answer({"quadrant": "Q4", "valence": 1}) == {"quadrant": "Q4", "valence": 1.0, "arousal": None}
    assert quality_answer({"ratings": [0, 100, 37]}, 3) == [0, 100, 37]
    assert listener_id(" Ann_2 ") == "ann_2"
    for ratings, said in (([0, 100], "3 versions to rate, not 2"), ([0, 101, 5], "from 0 to 100, not 101"),
                          ([0, -1, 5], "not -1"), ([0, 50.5, 5], "a whole number"), ([0, "50", 5], 'not "50"'),
                          ([0, float("nan"), 5], "not NaN"), ([0, None, 5], "not null")):
        with pytest.raises(Rejected, match=said) as refused:
            quality_answer({"ratings": ratings}, 3)
        assert refused.value.status == 400
    for name in ("", "-ann", "a/b", "a.b", "x" * 33, "an n", None, 7):
        with pytest.raises(Rejected, match="a listener id is"):
            listener_id(name)


BAD_ANSWERS = [
    ({"quadrant": "Q5"}, 400, "the quadrant must be one of"),
    ({"quadrant": "q1"}, 400, "the quadrant must be one of"),
    ({"quadrant": "Q1", "valence": 1.5}, 400, "valence must be a number from -1 to 1"),
    ({"quadrant": "Q1", "arousal": "high"}, 400, "arousal must be a number"),
    ({"quadrant": "Q1", "arousal": True}, 400, "arousal must be a number"),
    ({"quadrant": "Q1", "comment": "nice"}, 400, "nothing else"),
    ({"ratings": [50, 50, 50, 50]}, 400, "holds a quadrant"),  # a quality answer to an emotion trial
    (["Q1"], 400, "holds a quadrant"),
    (None, 400, "holds a quadrant"),
]


@pytest.mark.parametrize("answer, status, said", BAD_ANSWERS)
def test_a_malformed_or_out_of_range_answer_is_refused_and_nothing_is_lost(test_folder, answer, status, said):
    with served(test_folder) as (base, _):
        request(base + "api/start", {"listener": "ann"})
        request(base + "api/answer", {"listener": "ann", "position": 0, "answer": {"quadrant": "Q3"}})
        before = lines(test_folder, "ann")
        refused, body = request(base + "api/answer", {"listener": "ann", "position": 1, "answer": answer})
        assert refused == status and said in body["error"]
        assert lines(test_folder, "ann") == before
        status, where = request(base + "api/start", {"listener": "ann"})
        assert where["answered"] == 1  # the refused answer moved nothing on


def test_bad_requests_are_4xx_in_one_line(test_folder):
    with served(test_folder) as (base, events):
        request(base + "api/start", {"listener": "ann"})
        request(base + "api/answer", {"listener": "ann", "position": 0, "answer": {"quadrant": "Q3"}})
        before = lines(test_folder, "ann")
        cases = [
            ({"listener": "ann", "position": 0, "answer": {"quadrant": "Q1"}}, 409, "was answered already"),
            ({"listener": "ann", "position": 5, "answer": {"quadrant": "Q1"}}, 409, "comes after trial 2"),
            ({"listener": "ann", "position": 99, "answer": {"quadrant": "Q1"}}, 409, "there is no trial 100"),
            ({"listener": "ann", "position": "1", "answer": {"quadrant": "Q1"}}, 400, "a whole number"),
            ({"listener": "bob", "position": 0, "answer": {"quadrant": "Q1"}}, 404, "no listener 'bob'"),
            ({"listener": "../../etc", "position": 0, "answer": {}}, 400, "a listener id is"),
            ({"listener": "ann", "position": 1, "answer": {"quadrant": "Q1"}, "extra": 1}, 400, "nothing else"),
        ]
        for body, status, said in cases:
            got, answer = request(base + "api/answer", body)
            assert (got, said in answer["error"]) == (status, True), (body, answer)
        assert request(base + "api/answer", raw=b"{not json")[0] == 400
        assert request(base + "api/answer", raw=b"x" * 9000)[0] == 413
        assert request(base + "api/start", raw=b'{"listener": "ann"}', headers={"Content-Type": "text/plain"})[0] \
            == 415
        assert request(base + "api/setup", headers={"Host": "attacker.example:80"})[0] == 421
        assert request(base + "api/nothing", {"x": 1})[0] == 404
        assert lines(test_folder, "ann") == before
        assert all("\n" not in event for event in events)


def test_no_path_outside_the_test_is_served_and_nothing_names_a_system(test_folder):
    plan = read_plan(test_folder)
    with served(test_folder) as (base, _):
        _, where = request(base + "api/start", {"listener": "ann"})
        for path in ("../plan.json", "plan.json", "answers/ann.jsonl", "audio/", "%2e%2e/plan.json",
                     "audio/ann/0/../../../plan.json", "audio/ann/0/%2e%2e%2fplan.json", "//etc/passwd",
                     f"audio/{next(iter(plan['stimuli']))}.flac", "page.js/../plan.json", "audio/ann/0/clip/x"):
            status, body = _raw_get(base, "/" + path)
            assert status == 404, path
            assert b"hidden reference" not in body and b"estm listening test" not in body
        assert request(base + "audio/ann/0/clip")[0] == 200
        assert request(base + "audio/ann/1/clip")[0] == 403  # not the current trial: no peeking ahead
        assert request(base + "audio/ann/0/ref")[0] == 404  # an emotion trial has no reference
        assert request(base + "audio/bob/0/clip")[0] == 404
        status, part = request(base + "audio/ann/0/clip", headers={"Range": "bytes=0-99"})
        assert status == 206 and len(part) == 100 and part[:4] == b"fLaC"
        said = json.dumps([where, request(base + "api/setup")[1]])
        for token, stimulus in plan["stimuli"].items():  # no stimulus's name or source reaches the page
            assert token not in said and stimulus["source"] not in said
        assert "system" not in said and plan["trials"][0]["id"] not in said


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """A GET of `path` exactly as written (no client tidies up its dots)."""
    host, port = base.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_a_full_test_refuses_one_more_listener(test_folder):
    with served(test_folder) as (base, _):
        for listener in ("a1", "a2", "a3"):
            assert request(base + "api/start", {"listener": listener})[0] == 200
        status, body = request(base + "api/start", {"listener": "a4"})
        assert status == 409 and "orders for 3 listeners" in body["error"]
        assert request(base + "api/start", {"listener": "a2"})[0] == 200  # one of them may still come back
    assert not (test_folder / "answers" / "a4.jsonl").exists()


def test_a_killed_server_loses_no_acknowledged_answer_and_a_torn_line_is_cut(test_folder):
    server = ServerProcess(test_folder)
    try:
        base = server.start()
        request(base + "api/start", {"listener": "ann"})
        for position, quadrant in enumerate(("Q1", "Q2", "Q3")):
            assert request(base + "api/answer", {"listener": "ann", "position": position,
                                                 "answer": {"quadrant": quadrant}})[0] == 200
        server.kill()
        assert [json.loads(line).get("quadrant") for line in lines(test_folder, "ann")] == [None, "Q1", "Q2", "Q3"]
        with open(test_folder / "answers" / "ann.jsonl", "a") as file:  # a write cut short by a crash
            file.write('{"kind":"answer","listener":"ann","posi')
        base = server.start()  # on the same port
        status, where = request(base + "api/start", {"listener": "ann"})
        assert status == 200 and where["answered"] == 3  # the torn line was never acknowledged
        assert request(base + "api/answer", {"listener": "ann", "position": 3, "answer": {"quadrant": "Q4"}})[0] == 200
    finally:
        server.stop()
    records = [json.loads(line) for line in lines(test_folder, "ann")]
    assert [record.get("position") for record in records] == [None, 0, 1, 2, 3]


def test_a_port_in_use_and_a_test_already_served_are_one_line(test_folder, estm):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = estm("listen", "serve", test_folder, "--port", port)
    assert result.code == 1 and f"port {port} on 127.0.0.1 is in use" in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    server = ServerProcess(test_folder)
    try:
        server.start()
        result = estm("listen", "serve", test_folder, "--port", "0")
        assert result.code == 1 and "is being served already" in result.err
    finally:
        server.stop()
