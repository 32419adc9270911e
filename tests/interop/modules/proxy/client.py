"""The raw client of the proxy suite: one request per connection, the answer read to EOF with a
deadline, decoded but with what the wire showed kept (was the body cut short?).

    Row(id, target, method="GET", headers=(), body=b"", host="localhost", chunked=False)
    exchange(port, row) -> Answer(status, reason, headers, body, cut, seconds)
    normalised(answer, port) -> a comparable dict (Date, Server, Keep-Alive, Connection dropped;
                                the server's own port replaced by PORT; a backend echo parsed)
    ws_echo(port, path, host) -> the messages a WebSocket echo answered, or the HTTP status
"""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    id: str
    target: str
    method: str = "GET"
    headers: tuple = ()
    body: bytes = b""
    host: str = "localhost"
    chunked: bool = False
    timeout: float = 12.0
    expect: dict = field(default_factory=dict, hash=False, compare=False)   # noted facts


@dataclass
class Answer:
    status: int
    reason: str
    headers: list
    body: bytes
    cut: bool               # the connection closed before the body's framing ended
    seconds: float

    def header(self, name: str) -> str | None:
        vals = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(vals) if vals else None


def request_bytes(row: Row) -> bytes:
    lines = [f"{row.method} {row.target} HTTP/1.1", f"Host: {row.host}"]
    lines += [f"{n}: {v}" for n, v in row.headers]
    body = row.body
    if row.chunked:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[i:i + 7000] for i in range(0, len(body), 7000)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    elif body or row.method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port: int, row: Row) -> Answer:
    start = time.monotonic()
    deadline = start + row.timeout
    with socket.create_connection(("127.0.0.1", port), timeout=row.timeout) as s:
        data = request_bytes(row)
        expecting = any(n.lower() == "expect" for n, _ in row.headers)
        if expecting:
            head, _, body = data.partition(b"\r\n\r\n")
            s.sendall(head + b"\r\n\r\n")
            first = _recv_some(s, 5)
            s.sendall(body)
            buf = bytearray(first)
        else:
            s.sendall(data)
            buf = bytearray()
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                got = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not got:
                break
            buf += got
    return parse(bytes(buf), row.method, time.monotonic() - start)


def _recv_some(s, timeout: float) -> bytes:
    s.settimeout(timeout)
    try:
        return s.recv(65536)
    except socket.timeout:
        return b""


def parse(raw: bytes, method: str, seconds: float) -> Answer:
    while True:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            return Answer(0, "", [], raw, True, seconds)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:
            raw = rest
            continue
        break
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
    ans = Answer(status, parts[2] if len(parts) > 2 else "", headers, b"", False, seconds)
    te = ans.header("transfer-encoding")
    cl = ans.header("content-length")
    if method == "HEAD" or status in (204, 304) or status == 101:
        ans.body = rest
    elif te and "chunked" in te.lower():
        body, cut = _dechunk(rest)
        ans.body, ans.cut = body, cut
    elif cl is not None:
        n = int(cl)
        ans.body, ans.cut = rest[:n], len(rest) < n
    else:
        ans.body = rest
    return ans


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    out = bytearray()
    i = 0
    while True:
        nl = data.find(b"\r\n", i)
        if nl < 0:
            return bytes(out), True
        size = int(data[i:nl].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out), not data[nl + 2:].startswith(b"\r\n") and \
                b"\r\n\r\n" not in data[nl:]
        chunk = data[nl + 2:nl + 2 + size]
        out += chunk
        if len(chunk) < size:
            return bytes(out), True
        i = nl + 2 + size + 2


# Framing is not compared: a body the backend sends chunked reaches the client chunked or with a
# Content-Length depending on whether its end arrived with its first data -- apache2 itself
# answers either way from run to run (docs/interop.md, mod_proxy); the body and ``cut`` are.
DROPPED = frozenset({"date", "server", "keep-alive", "connection", "transfer-encoding",
                     "content-length"})


def normalised(a: Answer, port: int) -> dict:
    """What must be equal between the two servers' answers to one row."""
    p = str(port)

    def norm(s: str) -> str:
        return s.replace(f":{p}", ":PORT")

    headers = sorted((n.lower(), norm(v) if n.lower() != "allow" else
                      ",".join(sorted(v.split(","))))          # apache2's Allow order varies
                     for n, v in a.headers if n.lower() not in DROPPED)
    out = {"status": a.status, "headers": headers, "cut": a.cut}
    ctype = a.header("content-type") or ""
    if ctype.startswith("application/json") and not a.cut and a.body:
        echo = json.loads(a.body)
        echo["headers"] = [[n, norm(v)] for n, v in echo["headers"]]
        echo.pop("client", None)
        out["echo"] = echo
    elif ctype.startswith("text/html") and a.status >= 400:
        # an error page (the proxy's own, or a backend's passed on): the title first (the
        # clearer assertion message), then the whole page
        text = a.body.decode("latin-1")
        start = text.find("<title>")
        out["title"] = text[start:text.find("</title>")] if start >= 0 else text[:80]
        out["headers"] = headers
        out["page"] = norm(text)
    else:
        out["body"] = norm(a.body.decode("latin-1")) if len(a.body) < 4096 else \
            (len(a.body), hash(a.body))
    return out


def ws_echo(port: int, path: str, host: str = "localhost", messages=("hi", b"\x00\x01" * 3000,
                                                                      "close")):
    """A WebSocket conversation through the proxy: ('status', n) when the upgrade is refused,
    else the list of (kind, payload length or text) received, ending with the close."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection,
                                Request, TextMessage)
    ws = WSConnection(ConnectionType.CLIENT)
    got: list = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(ws.send(Request(host=host, target=path)))

        def events():
            data = s.recv(65536)
            ws.receive_data(data or None)
            return list(ws.events())

        evs = events()
        while not evs:
            evs = events()
        if isinstance(evs[0], RejectConnection):
            return ("status", evs[0].status_code)
        assert isinstance(evs[0], AcceptConnection), evs
        for m in messages:
            s.sendall(ws.send(TextMessage(data=m) if isinstance(m, str) else BytesMessage(data=m)))
            want = m
            buf = b"" if isinstance(m, bytes) else ""
            while True:
                evs = events()
                done = False
                for e in evs:
                    if isinstance(e, CloseConnection):
                        got.append(("close", e.code))
                        return got
                    buf += e.data
                    if e.message_finished:
                        done = True
                if done:
                    break
                if not evs and not isinstance(want, str):
                    continue
            got.append(("text", buf) if isinstance(buf, str) else ("bytes", len(buf)))
    return got
