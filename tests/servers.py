"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for the tests that talk to an endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[dict[str, Any], dict[str, str]], tuple[int, Any]]
"""``(request body, headers) -> (HTTP status, JSON body or raw bytes)``."""


def reply(text: str, **extra: Any) -> dict[str, Any]:
    """A chat-completions answer whose message is ``text``."""
    return {"choices": [{"message": {"role": "assistant", "content": text}}], **extra}


class ChatServer:
    """Serves ``POST .../chat/completions`` with ``answer``; ``url`` is its ``/v1`` root.

    Each request's body, headers and path are recorded in arrival order (``requests``, ``headers``,
    ``paths``) before ``answer`` sees it. With ``declare_length`` False the answer goes without a
    Content-Length header (its body then runs until the connection closes).
    """

    def __init__(self, answer: Answer) -> None:
        self.declare_length = True
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                server.paths.append(self.path)
                status, out = answer(body, dict(self.headers))
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if server.declare_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
