"""An independent webhook receiver for the tests and the bench: a real HTTP server on 127.0.0.1 in a
thread, which checks each request's signature with its own code (not Twinlabel's) as a team's
receiver would, and answers the statuses it is told to."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, secret: str, statuses: list[int] | None = None, port: int = 0):
        self.secret = secret.encode()
        self.statuses = deque(statuses or [])
        self.received: list[dict] = []  # {"event", "body", "valid", "at"}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(
                    {
                        "event": self.headers["X-Twinlabel-Event"],
                        "body": json.loads(body),
                        "valid": receiver.verify(self.headers.get("X-Twinlabel-Signature", ""), body),
                        "at": time.time(),
                    }
                )
                self.send_response(receiver.statuses.popleft() if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?team=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify(self, header: str, body: bytes, tolerance_s: int = 300) -> bool:
        """Stripe's scheme: t=<timestamp>,v1=<hex hmac-sha256 of "t.body">; a stale timestamp fails."""
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        if "t" not in parts or "v1" not in parts or abs(time.time() - int(parts["t"])) > tolerance_s:
            return False
        expected = hmac.new(self.secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
