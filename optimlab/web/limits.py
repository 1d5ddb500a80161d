"""Request-size cap and short error messages for the playground's API.

* :class:`BodySizeLimit`: an ASGI middleware that answers 413 to a body over ``max_bytes``, by its
  Content-Length header or, for a streamed body, as soon as the bytes read pass the cap.
* :func:`condense_errors`: pydantic's errors as one short entry per bad field (locations and
  messages cut, at most :data:`MAX_ERRORS`), so a 422 never echoes a big input back.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from fastapi import HTTPException

MAX_ERRORS = 5
MAX_LOCATION_PART = 40
MAX_MESSAGE = 200
MIN_MESSAGE = 25  # how short validation_content may cut a message to keep a 422 within its budget
MAX_ERROR_BODY = 1800  # bytes of a 422's JSON body (docs/web.md: error responses stay under 2 KB)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def condense_errors(errors: list[dict[str, Any]], max_message: int = MAX_MESSAGE) -> list[dict[str, Any]]:
    """One entry per location (the first error there), each {loc, msg, type} cut short; at most MAX_ERRORS."""
    seen, condensed = set(), []
    for error in errors:
        location = tuple(clip(str(part), MAX_LOCATION_PART) for part in error.get("loc", ()) if part != "body")
        if location in seen:
            continue
        seen.add(location)
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        condensed.append({"loc": list(location), "msg": clip(message, max_message), "type": str(error.get("type", ""))})
    if len(condensed) > MAX_ERRORS:
        more = len(condensed) - MAX_ERRORS
        condensed = condensed[:MAX_ERRORS] + [{"loc": [], "msg": f"and {more} more", "type": "more"}]
    return condensed


def validation_message(condensed: list[dict[str, Any]]) -> str:
    """One line: 'steps: Input should be less than or equal to 5000' (several fields joined by '; ')."""
    parts = []
    for error in condensed:
        location = ".".join(str(part) for part in error["loc"])
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(parts)


def validation_content(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """A 422's body, {"message": one line, "detail": the condensed errors}, within MAX_ERROR_BODY bytes:
    when five long messages (each already cut to MAX_MESSAGE) would pass it, they are cut shorter."""
    max_message = MAX_MESSAGE
    while True:
        detail = condense_errors(errors, max_message)
        content = {"message": validation_message(detail), "detail": detail}
        if max_message <= MIN_MESSAGE or len(json.dumps(content)) <= MAX_ERROR_BODY:
            return content
        max_message //= 2


class BodyTooLarge(HTTPException):
    """Raised while the body is read; FastAPI passes an HTTPException through to the app's handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large(max_bytes))


def too_large(max_bytes: int) -> str:
    return f"request body too large: the limit is {max_bytes} bytes"


class BodySizeLimit:
    """ASGI middleware: 413 ``{"message": "request body too large..."}`` for a body over `max_bytes`."""

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received, started = 0, False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = too_large(self.max_bytes)
        body = json.dumps({"message": message, "detail": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
