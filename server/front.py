"""The production server's front: whole requests are read by an event loop before a thread runs the app.

gunicorn's gthread worker hands a connection to a thread as soon as it is readable, and the thread then
blocks reading the rest, so 16 clients sending a header line a second held every thread. Here gunicorn's
own asyncio worker (``asgi``) reads the request line and headers, :class:`WSGIFront` reads the body (into
a temporary file past ``SPOOL_BYTES``), and only then does one of the worker's ``THREADS`` threads run the
Flask app. A slow sender costs a socket and a timer, never a thread.

Slow or idle connections are closed: headers must arrive within ``HEADER_TIMEOUT_S`` (408), a body may
pause at most ``BODY_IDLE_TIMEOUT_S`` and take at most ``BODY_TIMEOUT_S`` in all (408), and a kept-alive
connection waits ``KEEPALIVE_S`` for its next request. A body larger than the app's ``MAX_CONTENT_LENGTH``
is never read: the app gets the request without it and answers 413 as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from urllib.parse import parse_qs

from a2wsgi.wsgi import build_environ
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header, parse_cookie

from geodata.i18n import DEFAULT_LANGUAGE, Says, says, text

from .i18n import COOKIE, language_of

HEADER_TIMEOUT_S = 10  # from connecting to the end of the first request's headers (later ones: KEEPALIVE_S)
KEEPALIVE_S = 5  # an idle kept-alive connection, and the headers of each request after the first
BODY_IDLE_TIMEOUT_S = 30  # longest pause while a body arrives
BODY_TIMEOUT_S = 600  # a whole body: 200 MiB at 2.8 Mbit/s
SPOOL_BYTES = 1 << 20  # bodies larger than this wait in a temporary file, not in memory
WINDOW = 8  # response messages a thread may queue before it waits for the client to take them


class WSGIFront:
    """ASGI app running a WSGI ``app`` in ``threads`` threads, each request only once its body is all here.

    a2wsgi's WSGIMiddleware would read the body from the app's thread, and hands every response message
    over with a blocking round trip (+0.3–0.6 ms of CPU a request, up to the items route's own cost);
    here the body is already read and a thread queues its messages without waiting. a2wsgi still builds
    the environ.
    """

    def __init__(self, app, threads: int, max_body: int | None):
        self.app = app
        self.max_body = max_body
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan is off; no websockets here
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        length, chunked = _framing(scope["headers"])
        if not length and not chunked:  # GET and friends: nothing to wait for
            return await self._run(scope, io.BytesIO(), send)
        if length is not None and self.max_body is not None and length > self.max_body:
            # The app refuses it (413) from Content-Length alone, as it did under gthread, unread
            return await self._run(scope, io.BytesIO(), send)
        spool = tempfile.SpooledTemporaryFile(SPOOL_BYTES)
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                size = await self._read_body(receive, spool)
        except TimeoutError:
            spool.close()
            return await _send_error(send, 408, "request_timeout", text("front.body_too_slow", _reader_language(scope)))
        except BaseException:
            spool.close()
            raise
        if size is None:
            spool.close()
            return  # the client went away: nobody to answer
        if self.max_body is not None and size > self.max_body:  # chunked, over the limit: the app's 413, unread
            spool.close()
            spool = io.BytesIO()
        spool.seek(0)
        return await self._run(_with_length(scope, size), spool, send)

    async def _read_body(self, receive, spool) -> int | None:
        """Body bytes received into ``spool`` (stops past ``max_body``); None if the client disconnected."""
        size = 0
        while True:
            message = await asyncio.wait_for(receive(), BODY_IDLE_TIMEOUT_S)
            if message["type"] != "http.request":
                return None
            body = message.get("body", b"")
            size += len(body)
            if self.max_body is not None and size > self.max_body:
                return size  # no more is read: the connection closes after the 413
            spool.write(body)
            if not message.get("more_body", False):
                return size

    async def _run(self, scope, body, send):
        """Run the app on ``body`` (a file, closed when the app is done) in a thread; send what it answers."""
        loop = asyncio.get_running_loop()
        environ = build_environ(scope, body)
        environ["wsgi.errors"] = sys.stderr
        del environ["asgi.scope"]
        inbox: asyncio.Queue = asyncio.Queue()
        room = threading.Semaphore(WINDOW)
        gone = threading.Event()  # the client left or the request task was cancelled: stop the app's output

        def post(messages):  # in the app's thread
            room.acquire()
            if gone.is_set():
                raise _Gone
            loop.call_soon_threadsafe(inbox.put_nowait, messages)

        self.pool.submit(self._call, environ, post)
        try:
            while True:
                for message in await inbox.get():
                    if message is None:
                        return
                    if isinstance(message, BaseException):
                        raise message
                    await send(message)
                room.release()
        finally:
            gone.set()
            room.release()  # a thread waiting for room wakes up and stops

    def _call(self, environ, post):
        """Run the WSGI app (in a pool thread); its messages go out through ``post``, the last one None."""
        start: list = []  # the response start waits to go out with the first piece of body
        sent = False
        iterable = None

        def write(data: bytes):
            nonlocal sent
            if data:
                post([*start, {"type": "http.response.body", "body": data, "more_body": True}])
                start.clear()
                sent = True

        def start_response(status: str, headers, exc_info=None):
            if exc_info is not None and sent:
                raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: too late to change the answer
            start[:] = [{"type": "http.response.start", "status": int(status[:3]),
                         "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]}]
            return write

        try:
            iterable = self.app(environ, start_response)
            for data in iterable:
                write(data)
            post([*start, {"type": "http.response.body", "body": b"", "more_body": False}, None])
        except _Gone:
            pass
        except BaseException as e:  # noqa: BLE001 - the event loop re-raises it: gunicorn logs it, answers 500
            with contextlib.suppress(_Gone):
                post([e])
        finally:
            if iterable is not None and hasattr(iterable, "close"):
                iterable.close()
            environ["wsgi.input"].close()


class _Gone(Exception):
    """Nobody is listening for the rest of this response."""


def asgi_app(app) -> WSGIFront:
    """The Flask ``app`` as an ASGI app that reads each request whole before a thread runs it."""
    return WSGIFront(app, app.config["THREADS"], app.config["MAX_CONTENT_LENGTH"])


def _framing(headers) -> tuple[int | None, bool]:
    """(Content-Length, chunked) of a request whose framing the HTTP parser has already checked."""
    length, chunked = None, False
    for name, value in headers:
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


def _with_length(scope: dict, size: int) -> dict:
    """``scope`` whose body is ``size`` bytes with a Content-Length: WSGI apps read chunked bodies as empty."""
    headers = [(n, v) for n, v in scope["headers"] if n not in (b"content-length", b"transfer-encoding")]
    return {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}


def _reader_language(scope) -> str:
    """The language the app would answer this request in (server.i18n): its ``?lang=``, cookie, Accept-Language."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    lang = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [None])[0]
    cookie = parse_cookie(headers.get("cookie", "")).get(COOKIE)
    return language_of(lang, cookie, parse_accept_header(headers.get("accept-language"), LanguageAccept))


def _error_body(code: str, message: str) -> bytes:
    """The app's error shape (server.errors), for what the front answers itself."""
    return json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()


async def _send_error(send, status: int, code: str, message: str) -> None:
    body = _error_body(code, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class _Protocol(ASGIProtocol):
    """gunicorn's HTTP/1 protocol, closing a connection whose first request line and headers are too slow.

    gunicorn times out idle kept-alive connections (up to the next request's headers) but not the first
    request's headers, so a client sending a header line a second could hold a connection for ever.
    """

    _header_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        if self._callback_parser is not None:  # HTTP/1 (an HTTP/2 connection has its own timeouts)
            self._header_timer = self.worker.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _on_headers_complete(self):
        self._stop_header_timer()
        return super()._on_headers_complete()

    def connection_lost(self, exc):
        self._stop_header_timer()
        super().connection_lost(exc)

    def _stop_header_timer(self):
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _send_error_response(self, status, message, extra_headers=()):
        """gunicorn's own refusals (414 for a long request line, 400, 408, 431 ...) as JSON errors, like the app's."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        # before any header is read: in the default language; gunicorn's own words quoted as the reason
        message = (message.in_language(DEFAULT_LANGUAGE) if isinstance(message, Says)
                   else text("front.refused", DEFAULT_LANGUAGE).format(reason=message))
        body = _error_body(reason.lower().replace(" ", "_").replace("-", "_"), message)
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n")
        self._safe_write(head.encode("latin-1"))
        self._safe_write(body)

    def _headers_too_slow(self):
        self._header_timer = None
        if self._closed or self._current_request is not None:
            return
        self._send_error_response(408, says("front.headers_too_slow"))  # no headers yet: the default language
        self._keepalive_timeout()  # gunicorn's own close: the transport, and the connection's task wakes up


class Worker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker serving connections with :class:`_Protocol`."""

    def init_process(self):
        gasgi.ASGIProtocol = _Protocol  # the name gasgi builds each connection's protocol by (this process only)
        super().init_process()
