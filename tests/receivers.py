"""Webhook receivers for the tests: real HTTP servers on loopback, each in a thread, that
answer as they are told (fail, hang, answer 410, then recover) and keep what they got."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


def deliver_all(runtime, rounds: int = 20) -> None:
    """Delivery rounds, as the scheduler runs them, until nothing is due (or `rounds` ran)."""
    from hotline.integration.delivery import Deliverer

    deliverer = Deliverer(runtime)
    try:
        for _ in range(rounds):
            report = deliverer.run_once()
            if not (report.delivered or report.failed or report.dead or report.disabled):
                return
    finally:
        deliverer.close()


# An answer: a status, or (status, headers), or a number of seconds to hang before 200.
Answer = int | tuple[int, dict[str, str]]


@dataclass
class Receiver:
    """A webhook receiver. `answer(received)` decides each reply (default 204)."""

    answer: Callable[[Received], Answer] = lambda _: 204
    hang_seconds: Callable[[Received], float] = lambda _: 0.0
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                got = Received({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length), time.time())
                with receiver.lock:
                    receiver.got.append(got)
                hang = receiver.hang_seconds(got)
                if hang:
                    time.sleep(hang)
                answer = receiver.answer(got)
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.json for r in self.got]

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least n requests arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.got)} requests, not {n}, within {timeout} s")
