"""Answers: checked, appended to disk the moment they are given, and read back.

Each listener has one file, answers/ID.jsonl: a "start" line (which of the plan's orders is theirs), then one
"answer" line per trial, in their order. A line is appended with one write and synced to disk before the server
says it was saved, so a killed server or a closed tab loses nothing that was acknowledged. A line torn by a crash
mid-write was never acknowledged: reading skips it and the next append cuts it off, and the page sends it again.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..errors import EstmError, FileError
from ..labels import QUADRANTS
from .make import ANSWERS_FOLDER
from .plan import EMOTION

LISTENER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
NEW_ID_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"  # none that reads as another (l and 1, o and 0)
RATING_RANGE = (0, 100)


class Rejected(EstmError):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def listener_id(value) -> str:
    """A listener's id as typed (any case, spaces around): 1-32 letters, digits, '-' or '_', kept in lower case."""
    if not isinstance(value, str) or not LISTENER_ID.fullmatch(value.strip().lower()):
        raise Rejected(400, "a listener id is 1 to 32 letters, digits, - or _, starting with a letter or digit")
    return value.strip().lower()


def _number_in(value, low: float, high: float, what: str, whole: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise Rejected(400, f"{what} must be {kind} from {low:g} to {high:g}, not {json.dumps(value)}")
    return int(value) if whole else float(value)


def emotion_answer(answer) -> dict:
    """An emotion trial's answer: {"quadrant": Q1..Q4, and optionally "valence", "arousal": -1..1 or null}."""
    if not isinstance(answer, dict) or not set(answer) <= {"quadrant", "valence", "arousal"}:
        raise Rejected(400, "an emotion answer holds a quadrant and optionally valence and arousal, nothing else")
    if answer.get("quadrant") not in QUADRANTS.labels:
        raise Rejected(400, f"the quadrant must be one of {', '.join(QUADRANTS.labels)}")
    checked = {"quadrant": answer["quadrant"]}
    for scale in ("valence", "arousal"):
        value = answer.get(scale)
        checked[scale] = None if value is None else _number_in(value, -1, 1, scale)
    return checked


def quality_answer(answer, shown: int) -> list[int]:
    """A quality trial's answer: {"ratings": one whole number 0..100 per version, in the order shown}."""
    if not isinstance(answer, dict) or set(answer) != {"ratings"} or not isinstance(answer["ratings"], list):
        raise Rejected(400, "a quality answer holds ratings, a list with one rating per version")
    if len(answer["ratings"]) != shown:
        raise Rejected(400, f"this trial has {shown} versions to rate, not {len(answer['ratings'])}")
    return [_number_in(value, *RATING_RANGE, "a rating", whole=True) for value in answer["ratings"]]


# ---------------------------------------------------------------------------------------------------- files


def append_line(path: Path, record: dict) -> None:
    """Append `record` as one JSON line with one write, synced to disk; a torn last line is cut off first."""
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    new = not path.exists()
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            tail = os.pread(descriptor, min(size, 1 << 16), max(0, size - (1 << 16)))
            os.ftruncate(descriptor, size - len(tail) + tail.rfind(b"\n") + 1)
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if new:  # the file's name is on disk too
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_lines(path: Path) -> list[dict]:
    """The JSON lines of `path`; a torn last line (no newline: a write cut short) is skipped."""
    try:
        text = path.read_text()
    except (OSError, UnicodeError) as error:
        raise FileError(path, f"cannot read ({error})") from None
    lines = text.split("\n")[:-1]  # what follows the last newline was never finished
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise FileError(path, f"line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise FileError(path, f"line {number} is not a JSON object")
        records.append(record)
    return records


def read_answers(folder: str | Path) -> dict[str, list[dict]]:
    """Every listener's records (start line first) in the test folder `folder`, by listener id."""
    answers = {}
    for path in sorted((Path(folder) / ANSWERS_FOLDER).glob("*.jsonl")):
        records = read_lines(path)
        if records:
            if records[0].get("kind") != "start" or not isinstance(records[0].get("order"), int):
                raise FileError(path, "does not begin with a start line")
            answers[path.stem] = records
    return answers


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- the book


class AnswerBook:
    """Who has answered what in one test folder, kept in step with the answer files (one server at a time)."""

    def __init__(self, folder: Path, plan: dict):
        self.folder, self.plan = Path(folder) / ANSWERS_FOLDER, plan
        self.trials = {trial["id"]: trial for trial in plan["trials"]}
        self.lock = threading.Lock()
        self.folder.mkdir(exist_ok=True)
        self.listeners = {}  # id -> [order number, trials answered]
        for listener, records in read_answers(folder).items():
            answered = [record for record in records[1:] if record.get("kind") == "answer"]
            if [record.get("position") for record in answered] != list(range(len(answered))):
                raise FileError(self.folder / f"{listener}.jsonl", "its answers are not in order")
            self.listeners[listener] = [records[0]["order"], len(answered)]

    def begin(self, listener: str | None) -> str:
        """A listener coming back (their id), or a new one (a new id when None): their id."""
        with self.lock:
            if listener is None:
                while (listener := "".join(secrets.choice(NEW_ID_LETTERS) for _ in range(6))) in self.listeners:
                    pass
            if listener not in self.listeners:
                order = len(self.listeners)
                if order >= len(self.plan["orders"]):
                    raise Rejected(409, f"this test has orders for {len(self.plan['orders'])} listeners and all are "
                                        "taken (`estm listen make --listeners N` makes more)")
                append_line(self.folder / f"{listener}.jsonl",
                            {"kind": "start", "listener": listener, "order": order, "time": now()})
                self.listeners[listener] = [order, 0]
        return listener

    def progress(self, listener: str) -> tuple[int, int]:
        """(trials answered, trials in all) of a known listener; 404 for one never seen."""
        if listener not in self.listeners:
            raise Rejected(404, f"no listener {listener!r} has started this test")
        return self.listeners[listener][1], len(self.plan["orders"][0])

    def entry(self, listener: str, position: int) -> tuple[dict, dict]:
        """(the trial, its entry in the listener's order: versions shown) at `position` of their order."""
        order = self.plan["orders"][self.listeners[listener][0]]
        return self.trials[order[position]["trial"]], order[position]

    def record(self, listener: str, position, answer) -> None:
        """Check and append `listener`'s `answer` to the trial at `position`, which must be their next."""
        with self.lock:
            answered, total = self.progress(listener)
            if isinstance(position, bool) or not isinstance(position, int):
                raise Rejected(400, "position must be a whole number")
            if position != answered:
                why = "was answered already" if position < answered else f"comes after trial {answered + 1}"
                raise Rejected(409, f"trial {position + 1} {why}" if 0 <= position < total else
                               f"there is no trial {position + 1} (the test has {total})")
            trial, entry = self.entry(listener, position)
            if trial["kind"] == EMOTION:
                checked = emotion_answer(answer)
            else:  # ratings stored in the plan's order of versions; `shown` says where each stood
                shown = quality_answer(answer, len(entry["versions"]))
                ratings = [0] * len(shown)
                for place, version in enumerate(entry["versions"]):
                    ratings[version] = shown[place]
                checked = {"ratings": ratings, "shown": entry["versions"]}
            append_line(self.folder / f"{listener}.jsonl",
                        {"kind": "answer", "listener": listener, "position": position, "trial": trial["id"],
                         **checked, "time": now()})
            self.listeners[listener][1] += 1
