"""A language model for the tests: a real HTTP server on loopback, in a thread, that speaks
the OpenAI chat-completions protocol and answers as it is told (a canned reply, after a
delay, or an error status), keeping every request it got."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v1/chat/completions"


@dataclass
class FakeModel:
    """`reply` is the completion's content; `delay` seconds before answering; `status` other
    than 200 answers with an error body instead."""

    reply: str = ""
    delay: float = 0.0
    status: int = 200
    got: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def start(self) -> "FakeModel":
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                with model.lock:
                    model.got.append(body)
                    model.headers.append({k.lower(): v for k, v in self.headers.items()})
                if model.delay:
                    time.sleep(model.delay)
                if self.path != PATH:
                    status, answer = 404, {"error": {"message": "no such path"}}
                elif model.status != 200:
                    status, answer = model.status, {"error": {"message": "the model is down"}}
                else:
                    status, answer = (
                        200,
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": model.reply},
                                    "finish_reason": "stop",
                                }
                            ],
                        },
                    )
                data = json.dumps(answer, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

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

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.got)
