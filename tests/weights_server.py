"""A real HTTP server on 127.0.0.1 for the download tests: files, Range, and misbehaviour on demand.

Each path is a :class:`Route`: its bytes, and how the server treats a request
for it (honour ``Range`` or not, cut the connection, go silent, answer with a
given status). Every request is logged with its ``Range`` header and how many
body bytes were sent, so a test can tell what a resume really fetched.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 16


@dataclass
class Route:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    ranges: bool = True  # False: answer every request with the whole file (200)
    cut_at: int | None = None  # drop the connection once this byte of the file is reached...
    cuts: int = 0  # ...on this many requests
    stall_at: int | None = None  # go silent at this byte until the test releases the server...
    stalls: int = 0  # ...on this many requests
    pace: float = 0.0  # seconds to wait between chunks (a slow line, for progress to be seen)


@dataclass
class Request:
    path: str
    range: str | None
    sent: int = 0


@dataclass
class WeightsServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    certificate: tuple[str, str] | None = None  # (cert, key) PEM files: serve HTTPS

    def start(self) -> "WeightsServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def do_GET(self):
                record = Request(self.path, self.headers.get("Range"))
                server.requests.append(record)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.status != 200:
                    self.send_error(route.status)
                    return
                body, start = route.body, 0
                wanted = self.headers.get("Range")
                if wanted and route.ranges:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self._send(route, record, start)

            def _send(self, route: Route, record: Request, offset: int):
                cut = route.cut_at if route.cuts > 0 and route.cut_at is not None else None
                stall = route.stall_at if route.stalls > 0 and route.stall_at is not None else None
                if cut is not None:
                    route.cuts -= 1
                if stall is not None:
                    route.stalls -= 1
                while offset < len(route.body):
                    end = min(len(route.body), offset + CHUNK)
                    for limit in (cut, stall):
                        if limit is not None and offset < limit < end:
                            end = limit
                    if cut is not None and offset >= cut:
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if stall is not None and offset >= stall:
                        self.wfile.flush()
                        server.release.wait(30)
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(route.body[offset:end])
                    except OSError:  # the client went away (a cancel, a retry)
                        return
                    record.sent += end - offset
                    offset = end
                    if route.pace:
                        server.release.wait(route.pace)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.certificate:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.certificate)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def base(self) -> str:
        scheme = "https" if self.certificate else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/"

    def url(self, name: str) -> str:
        return self.base + name

    def add(self, name: str, body: bytes, **how) -> str:
        self.routes["/" + name] = Route(body, **how)
        return self.url(name)

    def for_path(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.path == "/" + name]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
