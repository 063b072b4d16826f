"""Webhook receivers for the tests: real HTTP servers on loopback, each in a thread, that
answer as they are told (fail, hang, answer 410, then recover) and keep what they got."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import Loopback


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
class Receiver(Loopback):
    """A webhook receiver. `answer(received)` decides each reply (default 204)."""

    answer: Callable[[Received], Answer] = lambda _: 204
    hang_seconds: Callable[[Received], float] = lambda _: 0.0
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.root()}/hook"

    def start(self) -> "Receiver":
        self.serve(self._post)
        return self

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length", 0))
        got = Received({k.lower(): v for k, v in request.headers.items()}, request.rfile.read(length), time.time())
        with self.lock:
            self.got.append(got)
        hang = self.hang_seconds(got)
        if hang:
            time.sleep(hang)
        answer = self.answer(got)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("content-length", "0")
        request.end_headers()

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
