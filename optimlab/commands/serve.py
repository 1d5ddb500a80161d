"""`optimlab serve`: the web playground on uvicorn (http://127.0.0.1:8000/ by default)."""

from __future__ import annotations

import argparse
import socket

MAX_SERVE_SECONDS = 600.0  # one request's time budget: nan and inf would let a request run forever


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="start the web playground (localhost by default)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: only this machine can connect)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time budget of one trajectory request in seconds (default 10)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web.app import create_app
    from ..web.models import MAX_SECONDS

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port={args.port} must be in [0, 65535]")
    max_seconds = MAX_SECONDS if args.max_seconds is None else args.max_seconds
    if not 0 < max_seconds <= MAX_SERVE_SECONDS:
        raise ValueError(f"--max-seconds={args.max_seconds} must be more than 0 and at most {MAX_SERVE_SECONDS:g}")
    app = create_app(max_seconds=max_seconds, freeze_gc=True)
    listener = _bind(args.host, args.port)
    port = listener.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: bound to {args.host}: other machines can reach the playground")
    print(f"optimlab playground: http://{shown}:{port}/  (API schema: /openapi.json; Ctrl+C to stop)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so the printed URL has the real port (even for --port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ValueError(f"cannot bind {host}:{port}: {error.strerror}") from None
    listener.listen(128)
    return listener
