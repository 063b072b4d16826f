"""A webhook receiver for bench/delivery.py: an ASGI app that answers 204 at once and keeps,
for each webhook, when it arrived and how long after its event happened.

    uvicorn --app-dir bench receiver_app:app --port P

GET /stats returns what it kept (and POST /reset forgets it).
"""

import json
import time
from datetime import datetime

got: list[tuple[float, float, str, int | None]] = []  # arrival, lag (s), ticket number, sequence


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    arrived = time.time()
    if scope["method"] == "POST" and scope["path"] == "/hook":
        event = json.loads(body)
        happened = datetime.fromisoformat(event["timestamp"]).timestamp()
        data = event["data"]
        got.append((arrived, arrived - happened, data.get("ticket_number"), data.get("sequence")))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/reset":
        got.clear()
    payload = json.dumps(got).encode() if scope["path"] == "/stats" else b"{}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})
