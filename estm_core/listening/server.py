"""`estm listen serve`: the test's web server, on the standard library's ThreadingHTTPServer.

It serves a fixed set of things and nothing else: the page (three files shipped beside this module), a small JSON
API, and the current trial's audio by listener, trial position and slot. No request names a file: a stimulus is
found through the plan, so no path outside the test folder can be reached. Bound to the loopback address, it also
refuses requests whose Host is not a loopback name (a page elsewhere cannot reach it through DNS rebinding); a POST
must be JSON (which a form on another site cannot send without asking).

    GET  /  /page.js  /page.css                  the page
    GET  /api/setup                              the quadrants' words, the number of trials
    POST /api/start   {"listener": ID or ""}     begin or resume; "" gives a new id
    POST /api/answer  {"listener", "position", "answer"}     the answer to the current trial
    GET  /audio/ID/POSITION/SLOT                 SLOT: clip (emotion), ref or 1..N (quality); the current trial only
"""

from __future__ import annotations

import errno
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Callable

from ..errors import EstmError
from ..labels import QUADRANTS
from .answers import AnswerBook, Rejected, listener_id
from .plan import EMOTION, read_plan, stimulus_file

PAGE = {"/": ("page.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript; charset=utf-8"),
        "/page.css": ("page.css", "text/css; charset=utf-8")}
AUDIO_PATH = re.compile(r"/audio/([a-z0-9][a-z0-9_-]{0,31})/(\d{1,6})/(clip|ref|[1-9][0-9]?)")
MAX_BODY = 8192  # bytes: an answer is a few hundred
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'",
                    "Cache-Control": "no-store"}
QUADRANT_WORDS = {"Q1": ("pleasant", "energetic"), "Q2": ("unpleasant", "energetic"),
                  "Q3": ("unpleasant", "calm"), "Q4": ("pleasant", "calm")}  # valence, arousal in plain words


class ListeningTest:
    """What the server serves for one test folder: its plan, its answer book and the page."""

    def __init__(self, folder: str | Path, on_event: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.plan = read_plan(self.folder)
        self.book = AnswerBook(self.folder, self.plan)
        self.on_event = on_event or (lambda message: None)
        shipped = resources.files(__package__)
        self.page = {path: (shipped.joinpath(name).read_bytes(), kind) for path, (name, kind) in PAGE.items()}

    def setup(self) -> dict:
        """What the page shows before any trial: each quadrant in words (never its code) and the trial count."""
        quadrants = []
        for number, (label, description) in enumerate(zip(QUADRANTS.labels, QUADRANTS.descriptions), 1):
            words = description[description.index("(") + 1:description.rindex(")")]
            valence, arousal = QUADRANT_WORDS[label]
            quadrants.append({"quadrant": label, "key": str(number), "words": words, "valence": valence,
                              "arousal": arousal})
        return {"quadrants": quadrants, "trials": len(self.plan["orders"][0])}

    def state(self, listener: str) -> dict:
        """Where `listener` stands: trials answered, in all, and the next trial as the page shows it (or None)."""
        answered, total = self.book.progress(listener)
        return {"listener": listener, "answered": answered, "total": total,
                "trial": self.view(listener, answered) if answered < total else None}

    def view(self, listener: str, position: int) -> dict:
        """The trial at `position` as the page sees it: its kind and its audio's addresses, nothing that names a
        system, a file or the trial's id."""
        trial, entry = self.book.entry(listener, position)
        base = f"/audio/{listener}/{position}"
        if trial["kind"] == EMOTION:
            return {"kind": "emotion", "position": position, "audio": f"{base}/clip"}
        return {"kind": "quality", "position": position, "reference": f"{base}/ref",
                "versions": [f"{base}/{place + 1}" for place in range(len(entry["versions"]))]}

    def audio_file(self, listener: str, position: int, slot: str) -> Path:
        """The stimulus behind an audio address: only the listener's current trial's is served."""
        answered, total = self.book.progress(listener)
        if position != answered:
            raise Rejected(403, "only the current trial's audio is served")
        trial, entry = self.book.entry(listener, position)
        if trial["kind"] == EMOTION:
            token = trial["stimulus"] if slot == "clip" else None
        elif slot == "ref":
            token = trial["reference"]
        else:
            place = int(slot) - 1 if slot.isdigit() else len(entry["versions"])
            token = trial["versions"][entry["versions"][place]]["stimulus"] if place < len(entry["versions"]) \
                else None
        if token is None:
            raise Rejected(404, "this trial has no such audio")
        return stimulus_file(self.folder, token)

    def start(self, body: dict) -> dict:
        _only(body, {"listener"})
        given = body.get("listener")
        listener = self.book.begin(None if given in (None, "") else listener_id(given))
        answered, total = self.book.progress(listener)
        self.on_event(f"listener {listener}: {'resumed at' if answered else 'started,'} {answered} of {total} answered")
        return self.state(listener)

    def answer(self, body: dict) -> dict:
        _only(body, {"listener", "position", "answer"})
        listener = listener_id(body.get("listener"))
        self.book.record(listener, body.get("position"), body.get("answer"))
        answered, total = self.book.progress(listener)
        if answered == total:
            self.on_event(f"listener {listener}: finished, {total} answered")
        return self.state(listener)


def _only(body, keys: set[str]) -> None:
    if not isinstance(body, dict) or not set(body) <= keys:
        raise Rejected(400, f"the request is a JSON object with {', '.join(sorted(keys))} and nothing else")


class _Handler(BaseHTTPRequestHandler):
    server_version = "estm-listen"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    test: ListeningTest  # set on the class made for each server

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        pass  # the command says what matters (listeners starting and finishing, refused requests)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self._answer(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._post)

    def _refuse_others(self) -> None:
        def refuse() -> None:
            raise Rejected(405, f"{self.command} is not served")

        self._answer(refuse)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _refuse_others  # noqa: N815

    def _answer(self, respond: Callable[[], None]) -> None:
        """Run `respond`; a refusal is a 4xx with its one line as {"error"}, and closes the connection (a body
        left unread must not be read as the next request)."""
        try:
            try:
                self._check_host()
                respond()
            except Rejected as refusal:
                self.test.on_event(f"refused {self.command} {self.path[:80]}: {refusal.status} {refusal}")
                self._fail(refusal.status, str(refusal))
            except EstmError as error:  # the disk refused an answer: the page keeps it and tries again
                self.test.on_event(f"error {self.command} {self.path[:80]}: {error}")
                self._fail(503, str(error))
            except Exception as error:  # a fault of ours: the listener sees a line, the server goes on
                self.test.on_event(f"internal error {self.command} {self.path[:80]}: {type(error).__name__}: {error}")
                self._fail(500, "internal error")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the browser stopped reading (it often drops audio it has enough of)

    def _fail(self, status: int, message: str) -> None:
        self.close_connection = True
        self._send(status, json.dumps({"error": message}).encode(), "application/json", {"Connection": "close"})

    def _check_host(self) -> None:
        """Bound to the loopback address, answer only requests addressed to a loopback name."""
        if self.server.server_address[0] != "127.0.0.1":
            return
        host = (self.headers.get("Host") or "").strip()
        name = host[:host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":")[0]
        if name.lower() not in LOOPBACK_NAMES:
            raise Rejected(421, "this server answers requests to its loopback address only")

    def _get(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in self.test.page:
            body, kind = self.test.page[path]
            self._send(200, body, kind)
        elif path == "/api/setup":
            self._send_json(self.test.setup())
        elif match := AUDIO_PATH.fullmatch(path):
            self._send_audio(self.test.audio_file(match[1], int(match[2]), match[3]))
        else:
            raise Rejected(404, "not found")

    def _post(self) -> None:
        routes = {"/api/start": self.test.start, "/api/answer": self.test.answer}
        if self.path not in routes:
            raise Rejected(404, "not found")
        self._send_json(routes[self.path](self._body()))

    def _body(self):
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            raise Rejected(415, "send JSON (Content-Type: application/json)")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Rejected(411, "the request needs a Content-Length")
        if int(length) > MAX_BODY:
            raise Rejected(413, f"a request is at most {MAX_BODY} bytes")
        try:
            return json.loads(self.rfile.read(int(length)))
        except (ValueError, UnicodeError):
            raise Rejected(400, "the request is not JSON") from None

    def _send_json(self, value: dict) -> None:
        self._send(200, json.dumps(value).encode(), "application/json")

    def _send_audio(self, path: Path) -> None:
        data = path.read_bytes()
        first, last, status = 0, len(data) - 1, 200
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", (self.headers.get("Range") or "").strip())
        if wanted and (wanted[1] or wanted[2]):  # one range, as a browser asks for media
            first = int(wanted[1]) if wanted[1] else max(0, len(data) - int(wanted[2]))
            last = min(int(wanted[2]), len(data) - 1) if wanted[1] and wanted[2] else len(data) - 1
            if first > last:
                self._send(416, b"", "audio/flac", {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
        self._send(status, data[first:last + 1], "audio/flac",
                   {"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{len(data)}"}
                   if status == 206 else {"Accept-Ranges": "bytes"})

    def _send(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, "Content-Type": kind, "Content-Length": str(len(body)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def make_server(test: ListeningTest, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for `test` bound to host:port (port 0: any free one); one line where it cannot be bound."""
    handler = type("Handler", (_Handler,), {"test": test})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise EstmError(f"port {port} on {host} is in use by another program: choose another with --port") \
                from None
        raise EstmError(f"cannot listen on {host} port {port}: {(error.strerror or str(error)).lower()}") from None
    server.daemon_threads = True
    return server


def address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"
