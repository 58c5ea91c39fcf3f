"""A real HTTP server on loopback serving saved responses and scripted faults; a fake timer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.kit.env import TESTS

FIXTURES = TESTS / "fixtures" / "sources"  # saved responses of each source


@dataclass
class Reply:
    """One scripted response: status, headers, body; or a stall longer than any timeout."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False


@dataclass
class Seen:
    """A request the server received."""

    path: str
    query: str
    headers: dict[str, str]


class Site:
    """Routes path -> replies; each request takes the next reply, the last one repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.base = ""

    def route(self, path: str, *replies: Reply) -> str:
        """Serve `replies` at `path` and return its absolute URL."""
        self.routes[path] = list(replies)
        return self.base + path

    def file(self, path: str, name: str, **headers: str) -> str:
        """Serve a fixture file at `path` (with optional ETag and other headers)."""
        return self.route(path, Reply(200, (FIXTURES / name).read_bytes(), headers))

    def hits(self, path: str) -> list[Seen]:
        """The requests made to `path`."""
        return [s for s in self.seen if s.path == path]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            site.seen.append(Seen(parts.path, parts.query, dict(self.headers.items())))
            replies = site.routes.get(parts.path)
            reply = (replies.pop(0) if len(replies) > 1 else replies[0]) if replies else Reply(404)
            if reply.stall:
                site.release.wait(10)
                return
            etag = reply.headers.get("ETag")
            modified = reply.headers.get("Last-Modified")
            if (etag and self.headers.get("If-None-Match") == etag) or (
                modified and self.headers.get("If-Modified-Since") == modified
            ):
                reply = Reply(304, b"", {"ETag": etag} if etag else {})
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    return Handler


@contextmanager
def serve() -> Iterator[Site]:
    """Run a Site on a free loopback port until the block ends."""
    site = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


class FakeTimer:
    """A monotonic clock that only moves when slept on; it records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The current fake time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the fake time instead of waiting."""
        self.sleeps.append(seconds)
        self.now += seconds
