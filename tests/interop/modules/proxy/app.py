"""The backend both proxies talk to in the proxy interop suite: a raw ASGI app run by uvicorn
(``python -m uvicorn tests.interop.modules.proxy.app:app``).

Every path answers JSON describing what the backend received (method, path, raw path, query,
headers in order, body length and sha256, the first 200 body bytes), except these prefixes:

    /drip/N/DELAY      N chunks of b"x" * 10, DELAY seconds apart (a slow backend)
    /hang              answers nothing (the proxy must time out)
    /half/N            Content-Length N * 2, N bytes sent, then the connection is cut
    /big/N             N bytes of a repeating pattern, Content-Length given
    /bigchunked/N      the same streamed without Content-Length (chunked)
    /status/CODE       that status with a small body (and the echo in X-Echo-Path)
    /redirect/PATH     302 to http://<Host header>/PATH, plus Content-Location and URI
    /cookie            Set-Cookie lines with Domain and Path attributes
    /hugeheader/N      a response header of N bytes
    /headers           extra response headers: hop-by-hop ones and a Connection-listed one
    /ws                WebSocket echo (text and bytes), "close" closes
    /slowhead/DELAY    the response head after DELAY seconds
    /who               the backend's own name (the BACKEND_NAME environment variable)
    /gate/NAME/N       answers "opened N" once N requests for the same NAME are waiting here
                       at once, "closed K" (503) if only K came within 10 s (how many
                       requests a proxy has in flight together); N = 0: "count K" at once

One leading segment before a keyword is ignored (``/t2/hang`` is ``/hang``), so that the
proxies' differently configured mounts reach the same endpoints.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os

NAME = os.environ.get("BACKEND_NAME", "backend")
KEYWORDS = frozenset({"drip", "hang", "slowhead", "half", "big", "bigchunked", "status",
                      "redirect", "cookie", "hugeheader", "headers", "who", "gate"})
GATES: dict[str, list] = {}                 # name -> [requests waiting, asyncio.Event]
PATTERN = bytes(range(256)) * 256          # 64 KiB


async def _body(receive) -> bytes:
    """The whole request body (the echo only keeps a hash and a prefix, but the tests send at
    most a few MB)."""
    h = hashlib.sha256()
    n = 0
    head = b""
    more = True
    while more:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunk = msg.get("body", b"")
        h.update(chunk)
        if len(head) < 200:
            head += chunk[:200 - len(head)]
        n += len(chunk)
        more = msg.get("more_body", False)
    return n, h.hexdigest(), head


async def _send(send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers]})
    await send({"type": "http.response.body", "body": body})


async def _echo(scope, receive, send, status: int = 200, extra: list | None = None) -> None:
    n, digest, head = await _body(receive)
    info = {
        "backend": NAME,
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope.get("raw_path", b"").decode("latin-1"),
        "query": scope.get("query_string", b"").decode("latin-1"),
        "http_version": scope.get("http_version"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body_length": n,
        "body_sha256": digest,
        "body_head": head.decode("latin-1"),
        "client": list(scope.get("client") or ()),
    }
    body = json.dumps(info, sort_keys=True).encode()
    await _send(send, status, [("content-type", "application/json"),
                               ("content-length", str(len(body))), *(extra or [])], body)


async def _ws(scope, receive, send) -> None:
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        text, data = msg.get("text"), msg.get("bytes")
        if text == "close":
            await send({"type": "websocket.close", "code": 1000})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": "echo:" + text})
        else:
            await send({"type": "websocket.send", "bytes": data})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _ws(scope, receive, send)
        return
    path = scope["path"]
    parts = path.strip("/").split("/")
    if len(parts) > 1 and parts[0] not in KEYWORDS and parts[1] in KEYWORDS:
        parts = parts[1:]           # a mount prefix (/t2/hang is /hang)
    head = parts[0] if parts else ""
    try:
        if head == "drip":
            await _body(receive)
            n, delay = int(parts[1]), float(parts[2])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            for _ in range(n):
                await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
                await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": b""})
        elif head == "hang":
            await asyncio.sleep(3600)
        elif head == "slowhead":
            await _body(receive)
            await asyncio.sleep(float(parts[1]))
            await _send(send, 200, [("content-type", "text/plain")], b"late\n")
        elif head == "half":
            await _body(receive)
            n = int(parts[1])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream"),
                                    (b"content-length", str(n * 2).encode())]})
            await send({"type": "http.response.body", "body": b"h" * n, "more_body": True})
            raise RuntimeError("cut mid-response")     # uvicorn drops the connection
        elif head in ("big", "bigchunked"):
            await _body(receive)
            n = int(parts[1])
            hdrs = [(b"content-type", b"application/octet-stream")]
            if head == "big":
                hdrs.append((b"content-length", str(n).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": hdrs})
            left = n
            while left > 0:
                piece = PATTERN[:min(left, len(PATTERN))]
                left -= len(piece)
                await send({"type": "http.response.body", "body": piece,
                            "more_body": left > 0})
            if n == 0:
                await send({"type": "http.response.body", "body": b""})
        elif head == "status":
            await _body(receive)
            code = int(parts[1])
            body = b"" if code in (204, 304) else f"backend says {code}\n".encode()
            hdrs = [("content-type", "text/plain"), ("x-echo-path", path)]
            if code == 401:
                hdrs.append(("www-authenticate", 'Basic realm="backend"'))
            await _send(send, code, hdrs, body)
        elif head == "redirect":
            await _body(receive)
            host = dict(scope["headers"]).get(b"host", b"").decode()
            target = "/" + "/".join(parts[1:])
            await _send(send, 302, [("location", f"http://{host}{target}"),
                                    ("content-location", f"http://{host}{target}.json"),
                                    ("uri", f"http://{host}{target}"),
                                    ("content-type", "text/plain")], b"moved\n")
        elif head == "cookie":
            await _echo(scope, receive, send, extra=[
                ("set-cookie", "a=1; Domain=backend.internal; Path=/app/x"),
                ("set-cookie", "b=2; path=/app; domain=other.example"),
                ("set-cookie", "c=3; Path=/elsewhere; HttpOnly")])
        elif head == "hugeheader":
            await _body(receive)
            await _send(send, 200, [("x-huge", "h" * int(parts[1])),
                                    ("content-type", "text/plain")], b"huge\n")
        elif head == "headers":
            await _echo(scope, receive, send, extra=[
                ("x-listed", "dropped"), ("connection", "x-listed"),
                ("keep-alive", "timeout=5"), ("x-kept", "kept"),
                ("proxy-authenticate", "Basic realm=p"), ("upgrade", "h2c"),
                ("trailer", "x-t")])
        elif head == "gate":
            await _body(receive)
            name, want = parts[1], int(parts[2])
            gate = GATES.setdefault(name, [0, asyncio.Event()])
            if want == 0:           # how many wait there now (this one not counted)
                await _send(send, 200, [("content-type", "text/plain")],
                            f"count {gate[0]}".encode())
                return
            gate[0] += 1
            if gate[0] >= want:
                gate[1].set()
            try:
                await asyncio.wait_for(gate[1].wait(), 10)
                await _send(send, 200, [("content-type", "text/plain")], f"opened {want}".encode())
            except asyncio.TimeoutError:
                await _send(send, 503, [("content-type", "text/plain")],
                            f"closed {gate[0]}".encode())
        elif head == "who":
            await _body(receive)
            await _send(send, 200, [("content-type", "text/plain")], NAME.encode())
        else:
            await _echo(scope, receive, send)
    except (ValueError, IndexError):
        await _send(send, 400, [("content-type", "text/plain")], b"bad test path\n")
