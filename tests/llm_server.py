"""A language model for the tests: a real HTTP server on loopback, in a thread, that speaks
the OpenAI chat-completions protocol and answers as it is told (a canned reply, after a
delay, or an error status), keeping every request it got."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import Loopback

PATH = "/v1/chat/completions"


@dataclass
class FakeModel(Loopback):
    """`reply` is the completion's content; `delay` seconds before answering; `status` other
    than 200 answers with an error body instead."""

    reply: str = ""
    delay: float = 0.0
    status: int = 200
    got: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.root()}{PATH}"

    def start(self) -> "FakeModel":
        self.serve(self._post)
        return self

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length", 0))
        body = json.loads(request.rfile.read(length))
        with self.lock:
            self.got.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.delay:
            time.sleep(self.delay)
        if request.path != PATH:
            status, answer = 404, {"error": {"message": "no such path"}}
        elif self.status != 200:
            status, answer = self.status, {"error": {"message": "the model is down"}}
        else:
            choice = {"index": 0, "message": {"role": "assistant", "content": self.reply}, "finish_reason": "stop"}
            answer = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [choice],
            }
            status = 200
        data = json.dumps(answer, ensure_ascii=False).encode()
        try:
            request.send_response(status)
            request.send_header("content-type", "application/json")
            request.send_header("content-length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.got)
