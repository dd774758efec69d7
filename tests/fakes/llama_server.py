"""A stand-in for `python -m llama_cpp.server` (same flags) to test process supervision fast.

Serves `GET /v1/models` on --port. Test-only flags: --startup-delay S (listen late), --exit-after S
(crash with code 3), --ignore-sigterm (only SIGKILL stops it), --exit-at-once (code 4).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        body = json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]})
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--exit-after", type=float, default=0.0)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--exit-at-once", action="store_true")
    args, _llama_flags = parser.parse_known_args()
    print(f"fake llama server starting on {args.port}", flush=True)
    if args.exit_at_once:
        print("fatal: cannot load model", flush=True)
        sys.exit(4)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(args.startup_delay)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    if args.exit_after > 0:
        threading.Timer(args.exit_after, _crash).start()
    server.serve_forever()


def _crash() -> None:
    os._exit(3)


if __name__ == "__main__":
    main()
