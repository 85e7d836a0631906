"""The production front (server/front.py): slow clients hold no thread; bodies are read whole, within limits.

The live tests start the real ``python -m server`` (1 worker, 4 threads); the others drive the ASGI app
directly with hand-made ``receive``/``send``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import select
import socket
import threading
import time

import pytest
import requests

from geodata.store import open_store
from server import front
from server.users import UserStore
from tests.factories import grid_row, grids
from tests.live import live_server

THREADS = 4  # the default GRIDMAP_THREADS: the live server's one worker runs the app in this many threads
LINE_EVERY_S = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, editor token) of a live server whose upload limit is 1 MiB."""
    data_dir = tmp_path_factory.mktemp("front")
    open_store(data_dir).write("grids", grids([grid_row("g1"), grid_row("g2")]), author="seed")
    token = UserStore(data_dir).add("editor", "editor")[1]
    with live_server(data_dir, data_dir / "server.log", demo=False, MAX_UPLOAD_MB=1) as base:
        yield base, token


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


class SlowSender(threading.Thread):
    """Sends a request's head (or, with ``body``, a declared body) one piece every 0.5 s, never finishing.

    Stops when ``stop`` is set or after ``limit_s``; ``cut_short`` says the server closed it first.
    """

    def __init__(self, base: str, stop: threading.Event, limit_s: float, *, body: bool = False, token: str = ""):
        super().__init__(daemon=True)
        self.sock = _connect(base)
        self.stop, self.limit_s, self.body = stop, limit_s, body
        self.head = (b"POST /api/uploads/grids HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
                     + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                     if body else b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        self.pieces = 0
        self.started = threading.Event()  # two pieces are out: a threaded server has handed it a thread
        self.cut_short = False  # the server answered or closed before the sender stopped
        self.timed_out = False
        self.answer = b""

    def run(self):
        deadline = time.monotonic() + self.limit_s
        try:
            self.sock.sendall(self.head)
            while not self.stop.wait(LINE_EVERY_S):
                if select.select([self.sock], [], [], 0)[0]:  # an answer (or the close) came first
                    self.answer = self.sock.recv(65536)
                    self.cut_short = True
                    break
                if time.monotonic() > deadline:
                    self.timed_out = True
                    break
                self.sock.sendall(b"x" if self.body else b"X-Slow-%d: y\r\n" % self.pieces)
                self.pieces += 1
                if self.pieces == 2:
                    self.started.set()
        except OSError:
            self.cut_short = True
        finally:
            self.started.set()


def test_healthz_answers_while_more_slow_senders_than_threads_are_open(server):
    # Issue 10, observation 2: under gthread each of these held a thread, /healthz queued behind them
    base, token = server
    stop = threading.Event()
    limit_s = front.HEADER_TIMEOUT_S - 2  # each gives up before the server would cut its headers off
    senders = [SlowSender(base, stop, limit_s) for _ in range(THREADS * 2)]
    senders += [SlowSender(base, stop, limit_s, body=True, token=token) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        for sender in senders:
            assert sender.started.wait(30)
        response = requests.get(f"{base}/healthz", timeout=60)
        open_when_answered = [not (s.timed_out or s.cut_short or not s.is_alive()) for s in senders]
    finally:
        stop.set()
        for sender in senders:
            sender.join(30)
            sender.sock.close()
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert all(open_when_answered), "/healthz waited for the slow senders to give up"


def test_headers_that_never_end_are_cut_off_with_408(server):
    base, _ = server
    stop = threading.Event()
    sender = SlowSender(base, stop, front.HEADER_TIMEOUT_S + 30)
    sender.start()
    sender.join(front.HEADER_TIMEOUT_S + 40)
    stop.set()
    sender.sock.close()
    assert sender.cut_short and not sender.timed_out  # the server closed it, well before the sender gave up
    assert sender.answer.startswith(b"HTTP/1.1 408 ")
    head, _, body = sender.answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == {"code": "request_timeout", "message": "请求头到达过慢", "details": []}


def test_the_servers_own_refusals_are_json_errors_like_the_apps(server):
    base, _ = server
    resp = requests.get(f"{base}/api/collections/grids/items?name={'x' * 8000}", timeout=30)
    assert resp.status_code == 414 and resp.headers["Content-Type"] == "application/json"
    error = resp.json()["error"]
    assert error["code"] == "request_uri_too_long"
    assert error["message"].startswith("请求无法处理（") and error["message"].endswith("）")  # gunicorn's words quoted


def test_declared_body_over_the_limit_gets_413_unread(server):
    base, token = server
    with _connect(base) as sock:
        sock.sendall(b"POST /api/uploads/grids HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
                     + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n" % (2 << 20)
                     + b"--b\r\n")  # 2 MiB announced, a few bytes sent: the answer must not wait for the rest
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    assert response.status == 413
    assert json.loads(body)["error"]["code"] == "too_large"


def test_chunked_body_over_the_limit_gets_413(server):
    base, token = server
    pieces = (b"x" * (256 << 10) for _ in range(6))  # 1.5 MiB, no Content-Length
    response = requests.post(f"{base}/api/uploads/grids", data=pieces, timeout=60,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_chunked_upload_reaches_the_app_whole(server):
    base, token = server
    layer = grids([grid_row(f"n{i}") for i in range(3)]).to_json(drop_id=True).encode()
    boundary = "gridmapboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"dry_run\"\r\n\r\n1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"g.geojson\"\r\n"
            f"Content-Type: application/geo+json\r\n\r\n").encode() + layer + f"\r\n--{boundary}--\r\n".encode()
    response = requests.post(f"{base}/api/uploads/grids", data=iter([form[:100], form[100:]]), timeout=60,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 200, response.text  # a dry run of the 3 grids sent
    assert response.json()["features"] == 3


# --- the ASGI app, driven directly ---------------------------------------------------------

SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
         "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5),
         "server": ("127.0.0.1", 80)}


def call(wsgi_app, messages, *, headers=(), max_body=1000, query_string=b""):
    """What the front sends back for a request whose body arrives as ``messages`` (then nothing more)."""
    sent = []

    async def main():
        pending = list(messages)

        async def receive():
            if pending:
                return pending.pop(0)
            await asyncio.Event().wait()  # a client that sends nothing more

        async def send(message):
            sent.append(message)

        app = front.WSGIFront(wsgi_app, 2, max_body)
        try:
            await app({**SCOPE, "headers": list(headers), "query_string": query_string}, receive, send)
        finally:
            app.pool.shutdown()

    # a loop of its own in a thread of its own: the browser tests leave one running in this thread
    with concurrent.futures.ThreadPoolExecutor(1) as runner:
        runner.submit(asyncio.run, main()).result()
    return sent


def echo(environ, start_response):
    """Answers with the request body it read, in three pieces, and its Content-Length."""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("X-Length", environ.get("CONTENT_LENGTH", ""))])
    return iter([body[:1], body[1:2], body[2:]])


def test_the_app_reads_a_chunked_body_whole_with_its_length():
    sent = call(echo, [{"type": "http.request", "body": b"ab", "more_body": True},
                       {"type": "http.request", "body": b"cd", "more_body": False}],
                headers=[(b"transfer-encoding", b"chunked")])
    assert sent[0]["status"] == 200 and (b"x-length", b"4") in sent[0]["headers"]
    assert [m.get("body") for m in sent[1:]] == [b"a", b"b", b"cd", b""]  # streamed as the app yields
    assert [m.get("more_body") for m in sent[1:]] == [True, True, True, False]


def test_a_body_that_stops_arriving_gets_408_and_never_reaches_the_app(monkeypatch):
    monkeypatch.setattr(front, "BODY_IDLE_TIMEOUT_S", 0.05)
    called = []
    sent = call(lambda environ, start_response: called.append(1),
                [{"type": "http.request", "body": b"ab", "more_body": True}], headers=[(b"content-length", b"10")])
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"] == {"code": "request_timeout", "message": "请求体到达过慢",
                                                    "details": []}  # in the default language
    assert called == []


@pytest.mark.parametrize("asked, said", [
    ({"headers": [(b"accept-language", b"en-GB,en;q=0.8")]}, "the request body arrived too slowly"),
    ({"headers": [(b"cookie", b"gridmap_lang=en")]}, "the request body arrived too slowly"),
    ({"headers": [(b"accept-language", b"en")], "query_string": b"lang=zh"}, "请求体到达过慢"),
])
def test_a_slow_bodys_408_is_in_the_readers_language(monkeypatch, asked, said):
    monkeypatch.setattr(front, "BODY_IDLE_TIMEOUT_S", 0.05)
    sent = call(lambda environ, start_response: None, [{"type": "http.request", "body": b"ab", "more_body": True}],
                headers=[(b"content-length", b"10"), *asked["headers"]], query_string=asked.get("query_string", b""))
    assert json.loads(sent[1]["body"])["error"]["message"] == said


def test_a_client_gone_mid_body_never_reaches_the_app():
    called = []
    sent = call(lambda environ, start_response: called.append(1),
                [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}],
                headers=[(b"content-length", b"10")])
    assert sent == [] and called == []


def test_an_over_limit_body_is_not_read_and_the_app_sees_its_length():
    sent = call(echo, [], headers=[(b"content-length", b"5000")])  # nothing sent: the front must not wait
    assert (b"x-length", b"5000") in sent[0]["headers"]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""


def test_an_app_error_reaches_the_server():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):  # gunicorn logs it and answers 500
        call(broken, [], headers=[])
