"""Fetch the CMFNet authors' weights, check them, and install them as the task's default.

One function, :func:`download_weights`, serves the CLI, the app and GIMP: a
progress callback ``(bytes done, bytes total or None)`` and the engine's
:class:`~cmfnet_core.engine.CancelToken`.

The transfer (:func:`fetch`) writes ``NAME.part`` beside the destination and
resumes it with an HTTP ``Range`` request; a server that answers 200 instead
of 206, or 416, restarts it cleanly. A dropped connection or a stall (no byte
for ``stall_timeout`` seconds) is retried with backoff, resuming each time.
The network reads run in a helper thread that hands chunks over a small queue,
so a cancel (or Ctrl-C) is seen within a fraction of a second even while the
server is silent; the ``.part`` is only ever written by the calling thread,
so whatever it holds is a clean prefix of the file, kept for the next try.

The standard library's urllib does the HTTP: it follows GitHub's redirect to
its download host, honours ``HTTPS_PROXY``/``NO_PROXY`` as every Python tool
does, and adds no dependency. Certificates: ``SSL_CERT_FILE``/``SSL_CERT_DIR``
(read by OpenSSL), ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` (named here,
as requests and curl users set them for company proxies).
"""
from __future__ import annotations

import datetime
import os
import queue
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .i18n import _
from .network_config import Config, expected_shapes
from .weights import (Weights, WeightsError, check_task, install_weights, installed_weights, read_weights,
                      set_default, sha256, user_weights_dir)

BASE_URL = "https://github.com/FanChiMao/CMFNet/releases/download/v0.0/"
RELEASE_PAGE = "https://github.com/FanChiMao/CMFNet/releases"
MIRROR_ENV = "CMFNET_WEIGHTS_MIRROR"

# The authors' release files, one per task (names as the authors' code uses them).
SOURCES = {
    "deblur": "deblur_GoPro_CMFNet.pth",
    "dehaze": "dehaze_I_OHaze_CMFNet.pth",
    "deraindrop": "deraindrop_DeRainDrop_CMFNet.pth",
}
FULL_SIZE = Config()  # the authors' network: every key and shape must match it
APPROX_MB = 200  # each release file: weights plus the optimizer's two Adam moments

CHUNK = 1 << 16
_POLL_S = 0.1  # how often a silent transfer looks at the cancel token


class DownloadError(WeightsError):
    """A download or its check failed: one line saying what happened and what to do.

    ``reason`` names the cause in one word for the app's wording (``offline``,
    ``proxy``, ``certificate``, ``disk``, ``http``, ``stalled``, ``content``, ``busy``)."""

    def __init__(self, message: str, reason: str = "http"):
        super().__init__(message)
        self.reason = reason


class _Retry(Exception):
    """A transient failure: try again, resuming from what the .part holds. ``stalled``:
    the server went silent (no answer, no data), said as such when the tries run out."""

    def __init__(self, message: str, stalled: bool = False):
        super().__init__(message)
        self.stalled = stalled


class _NoAnswer(_Retry):
    """No answer at all (connect or first reply timed out): offline behind a silent firewall
    looks like this, so it is tried twice, not for minutes."""


Progress = Callable[[int, "int | None"], None]


def source_url(task: str, url: str | None = None) -> str:
    """Where ``task``'s file comes from: ``url``, else the mirror, else the authors' release."""
    check_task(task)
    if url:
        return url
    base = os.environ.get(MIRROR_ENV, "").strip() or BASE_URL
    return base.rstrip("/") + "/" + SOURCES[task]


def manual_route(task: str) -> str:
    """What to do by hand when the download cannot work here."""
    return _("download {file} by hand from {page} and run 'cmfnet weights import {task} "
             "FILE'").format(file=SOURCES[task], page=RELEASE_PAGE, task=task)


def model_bytes(config: Config = FULL_SIZE) -> int:
    """Size of the converted model as stored (float32 weights)."""
    total = 0
    for shape in expected_shapes(config).values():
        count = 1
        for n in shape:
            count *= n
        total += count
    return 4 * total


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` lives (tests replace this probe)."""
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


# --- the transfer -------------------------------------------------------------------

def _ssl_context() -> ssl.SSLContext:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    context = ssl.create_default_context(cafile=bundle or None)  # honours SSL_CERT_FILE/DIR
    if not bundle and not os.environ.get("SSL_CERT_FILE") and not os.environ.get("SSL_CERT_DIR"):
        try:  # Python builds without system certificates (e.g. python.org's on macOS)
            import certifi

            context.load_verify_locations(certifi.where())
        except (ImportError, OSError):
            pass
    return context


def _opener() -> urllib.request.OpenerDirector:
    # ProxyHandler() reads HTTP(S)_PROXY and NO_PROXY from the environment
    return urllib.request.build_opener(urllib.request.ProxyHandler(),
                                       urllib.request.HTTPSHandler(context=_ssl_context()))


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"cmfnet-restore/{version('cmfnet-restore')}"
    except Exception:  # not installed (a source checkout)
        return "cmfnet-restore"


class _Stream:
    """One HTTP request read in a helper thread; chunks come back over a bounded queue."""

    def __init__(self, opener, request, timeout: float):
        self._queue: queue.Queue = queue.Queue(maxsize=32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(opener, request, timeout),
                                        name="cmfnet-download", daemon=True)
        self._thread.start()

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _run(self, opener, request, timeout) -> None:
        try:
            with opener.open(request, timeout=timeout) as response:
                self._put(("head", response.status, response.headers))
                read = getattr(response, "read1", response.read)
                while not self._stop.is_set():
                    data = read(CHUNK)
                    if not data:
                        break
                    self._put(("data", data))
            self._put(("end", None))
        except BaseException as exc:  # handed to the caller, who decides
            self._put(("error", exc))

    def get(self, timeout: float):
        return self._queue.get(timeout=timeout)

    def close(self) -> None:
        """Abandon the request; the thread ends at its next chunk or socket timeout."""
        self._stop.set()


def _wait(seconds: float, cancel) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _check(cancel)
        time.sleep(min(_POLL_S, max(0.0, end - time.monotonic())))
    _check(cancel)


def _check(cancel) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


def _content_range_total(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from ``bytes START-END/TOTAL`` or ``bytes */TOTAL``."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _slash, total = value[6:].partition("/")
    start = span.split("-")[0]
    return (int(start) if start.isdigit() else None), (int(total) if total.isdigit() else None)


def part_path(dest: str | os.PathLike) -> Path:
    """Where :func:`fetch` keeps what has arrived of ``dest`` until it is whole: ``NAME.part``
    beside it, so the next fetch of the same file resumes it."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def download_path(task: str) -> Path:
    """Where :func:`download_weights` fetches ``task``'s release file: one known name per
    task, whatever the address, so a later run resumes it and ``remove`` finds it."""
    return user_weights_dir() / task / SOURCES[task]


def fetch(url: str, dest: str | os.PathLike, *, progress: Progress | None = None, cancel=None,
          stall_timeout: float = 30.0, connect_timeout: float = 30.0, retries: int = 4,
          backoff: float = 1.0, need_extra: int = 0) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming what a part holds.

    Raises :class:`DownloadError` (one line), or ``Cancelled`` with the part kept.
    ``need_extra``: bytes needed beside the file afterwards (the converted model),
    counted in the free-space check.
    """
    dest = Path(dest)
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = _opener()
    failures = 0
    last_error, stalled = "", False
    answered = False  # any reply from the server during this fetch
    while True:
        _check(cancel)
        have = part.stat().st_size if part.exists() else 0
        try:
            finished = _attempt(opener, url, part, have, progress, cancel, stall_timeout,
                                connect_timeout, need_extra)
        except _Retry as exc:
            now = part.stat().st_size if part.exists() else 0
            failures = 1 if now > have else failures + 1  # progress made: a fresh allowance
            last_error = str(exc)
            # "timed out": the system's words (untranslated) for a socket that heard nothing
            stalled = exc.stalled or "timed out" in last_error
            answered = answered or not isinstance(exc, _NoAnswer)
            if failures > (retries if answered else min(retries, 1)):
                tries = failures - 1
                gave_up = (_("gave up after 1 retry") if tries == 1 else
                           _("gave up after {n} retries").format(n=tries))
                then = (_("({size} kept in {part}; run it again to resume)").format(
                    size=_mb(now), part=part.name) if now else _("(run it again later)"))
                raise DownloadError(f"{url}: {last_error}; {gave_up} {then}",
                                    "stalled" if stalled else "http") from None
            _wait(backoff * 2 ** max(0, failures - 1), cancel)
            continue
        if finished:
            os.replace(part, dest)
            return dest


def _attempt(opener, url, part: Path, have: int, progress, cancel, stall_timeout,
             connect_timeout, need_extra) -> bool:
    """One request; True when the part is complete, _Retry for transient failures."""
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    # the socket's own timeout only ends an abandoned reader thread: the waits below
    # (connect_timeout, stall_timeout) decide first and say which it was
    stream = _Stream(opener, urllib.request.Request(url, headers=headers),
                     2 * max(connect_timeout, stall_timeout) + 1)
    try:
        kind, *rest = _next(stream, cancel, connect_timeout,
                            _NoAnswer(_("no answer from the server in {seconds} s").format(
                                seconds=f"{connect_timeout:g}"), stalled=True))
        if kind == "error":
            return _answer_error(rest[0], url, part, have)
        if kind != "head":
            raise _NoAnswer(_("the connection closed before the server answered"))
        status, head = rest
        total = _plan(status, head, url, part, have)
        if total is not None and total == have:
            return True  # 206/416 said the part is already whole
        if status == 200:
            have = 0
        _check_space(part.parent, (total - have) if total else 0, need_extra)
        done = have
        with open(part, "ab") as out:
            _lock(out, part)
            if not have:
                out.truncate(0)  # a restart: after the lock, so a running download is not cut
            if progress:
                progress(done, total)
            while True:
                kind, *rest = _next(stream, cancel, stall_timeout,
                                    _Retry(_("no data for {seconds} s (stalled)").format(
                                        seconds=f"{stall_timeout:g}"), stalled=True))
                if kind == "data":
                    out.write(rest[0])
                    out.flush()  # what the part holds on disk is what a resume asks after
                    done += len(rest[0])
                    if progress:
                        progress(done, total)
                    continue
                out.flush()
                if kind == "error":
                    raise _Retry(_("the connection dropped after {size} ({reason})").format(
                        size=_mb(done), reason=_describe(rest[0])))
                break  # "end"
        if total is not None and done < total:
            raise _Retry(_("the connection closed after {done} of {total}").format(
                done=_mb(done), total=_mb(total)))
        if total is not None and done > total:
            part.unlink(missing_ok=True)
            raise _Retry(_("the server sent {done}, more than the {total} it announced").format(
                done=_mb(done), total=_mb(total)))
        return True
    finally:
        stream.close()


def _lock(handle, part: Path) -> None:
    """One download per file: a second (the app and a terminal at once) stops with a line."""
    try:
        import fcntl
    except ImportError:  # Windows: the file is opened exclusively enough by the OS
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DownloadError(_("{part}: another download of this file is under way (in the "
                              "app or another terminal); let it finish").format(part=part.name),
                            "busy") from None


def _next(stream: _Stream, cancel, limit: float, silence: _Retry):
    """The stream's next item; cancel is seen within _POLL_S, silence past ``limit`` retried."""
    deadline = time.monotonic() + limit
    while True:
        _check(cancel)
        try:
            return stream.get(timeout=_POLL_S)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise silence from None


def _plan(status: int, head, url: str, part: Path, have: int) -> int | None:
    """The file's total size from the answer's headers; refuses what cannot be the file."""
    kind = (head.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        raise DownloadError(
            _("{url}: a web page (HTML) arrived instead of the weights file: a proxy or "
              "sign-in page (e.g. hotel or company Wi-Fi) answered; open the address in a browser, "
              "or set {variable} to a mirror").format(url=url, variable=MIRROR_ENV), "content")
    length = head.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if status == 206:
        start, total = _content_range_total(head.get("Content-Range"))
        if start != have:  # not the range asked for: start over rather than splice wrongly
            part.unlink(missing_ok=True)
            raise _Retry(_("the server resumed at byte {start}, not {have}").format(start=start, have=have))
        return total if total is not None else (have + length if length is not None else None)
    if status == 200:
        return length  # the whole file again: the part is rewritten from its start
    raise _Retry(_("unexpected HTTP status {status}").format(status=status))


def _answer_error(exc: BaseException, url: str, part: Path, have: int) -> bool:
    """Classify a failed request: True (complete), _Retry, or DownloadError."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 416:
            _start, total = _content_range_total(exc.headers.get("Content-Range") if exc.headers else None)
            if total is not None and total == have and have:
                return True
            part.unlink(missing_ok=True)  # the part is longer than the file, or stale
            raise _Retry(_("the server refused the resume (HTTP 416); starting over"))
        if exc.code in (407,):
            raise DownloadError(_("{url}: the proxy asks for a password (HTTP 407): put it in "
                                  "HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT)").format(url=url), "proxy")
        if exc.code == 404:
            raise DownloadError(_("{url}: not found (HTTP 404); the file may have moved").format(url=url),
                                "http")
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retry(_("the server answered HTTP {code}").format(code=exc.code))
        raise DownloadError(_("{url}: the server answered HTTP {code} {reason}").format(
            url=url, code=exc.code, reason=exc.reason), "http")
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    proxy = _proxy_for(url)
    if proxy and isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
        raise DownloadError(_("{url}: the proxy {proxy} cannot be reached ({reason}); "
                              "check HTTPS_PROXY / NO_PROXY").format(
            url=url, proxy=proxy, reason=_describe(reason)), "proxy")
    if isinstance(reason, ssl.SSLCertVerificationError):
        raise DownloadError(
            _("{url}: the server's certificate is not trusted ({reason}); behind a "
              "company proxy, point SSL_CERT_FILE at its certificate bundle").format(
                url=url, reason=reason.verify_message), "certificate")
    if isinstance(reason, ConnectionRefusedError):
        raise DownloadError(_("{url}: the connection was refused (no server there, or a "
                              "firewall); check HTTPS_PROXY if you use a proxy").format(url=url), "offline")
    if isinstance(reason, socket.gaierror):
        raise DownloadError(_("{url}: cannot reach the server (no internet connection, or the "
                              "name cannot be looked up)").format(url=url), "offline")
    if isinstance(exc, (OSError, TimeoutError)) or isinstance(reason, (OSError, TimeoutError)):
        raise _NoAnswer(_describe(reason))
    raise DownloadError(f"{url}: {_describe(reason)}", "http")


def _proxy_for(url: str) -> str | None:
    """The proxy urllib uses for ``url`` (from HTTPS_PROXY/HTTP_PROXY, less NO_PROXY), if any."""
    scheme, _sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    proxies = urllib.request.getproxies()
    if scheme not in proxies or urllib.request.proxy_bypass(host):
        return None
    return proxies[scheme]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ")


def _check_space(folder: Path, remaining: int, need_extra: int) -> None:
    need = remaining + need_extra + (16 << 20)
    free = free_bytes(folder)
    if free < need:
        raise DownloadError(_("not enough free disk space in {folder}: {needed} needed, "
                              "{free} free; make room and run it again").format(
            folder=folder, needed=_mb(need), free=_mb(free)), "disk")


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


# --- check and install ----------------------------------------------------------------

def verify(path: Path, expected: Config = FULL_SIZE) -> Weights:
    """Read ``path`` through the allow-list reader; it must hold exactly the ``expected`` network."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head")):
        raise DownloadError(_("a web page (HTML, {size}) arrived instead of the weights file: "
                              "a proxy or sign-in page answered; open the address in a browser, "
                              "or set {variable} to a mirror").format(size=_mb(size), variable=MIRROR_ENV),
                            "content")
    try:
        weights = read_weights(path)
    except WeightsError as exc:
        raise DownloadError(_("the file that arrived ({size}) is not usable weights: {reason}; "
                              "delete it and download again").format(size=_mb(size), reason=exc),
                            "content") from None
    if weights.config != expected:
        raise DownloadError(
            _("the file that arrived ({size}) holds a different CMFNet ({found} M parameters, "
              "the authors' has {expected} M); check the address or the mirror").format(
                size=_mb(size), found=f"{model_bytes(weights.config) / 4e6:.1f}",
                expected=f"{model_bytes(expected) / 4e6:.1f}"), "content")
    return weights


@dataclass
class Downloaded:
    """What :func:`download_weights` installed."""

    task: str
    path: Path  # the installed .pdparams
    url: str
    size: int
    sha256: str
    kept: Path | None  # the downloaded checkpoint, when asked to keep it
    fresh: bool = True  # False: already installed from this address, nothing fetched


def download_weights(task: str, *, url: str | None = None, keep: bool = False, force: bool = False,
                     progress: Progress | None = None, cancel=None,
                     status: Callable[[str], None] | None = None,
                     expected: Config = FULL_SIZE, **transfer) -> Downloaded:
    """Download ``task``'s authors' weights, check them, install them as its default.

    ``status`` hears the phases after the transfer ("checking", "installing").
    Weights already downloaded from the same address are only made the default
    again, unless ``force``.
    ``transfer``: :func:`fetch`'s timeouts and retries. Nothing is installed
    unless the file is exactly the expected network.
    """
    address = source_url(task, url)
    pth = download_path(task)
    if not force:
        for entry in installed_weights(task):
            provenance = entry.meta.get("provenance", {})
            if entry.downloaded and provenance.get("source_url") == address and entry.full_size:
                set_default(task, entry.path)
                return Downloaded(task, entry.path, address, provenance.get("source_size", 0),
                                  provenance.get("source_sha256", ""), None, fresh=False)
    if not pth.exists():
        fetch(address, pth, progress=progress, cancel=cancel,
              need_extra=model_bytes(expected), **transfer)
    _check(cancel)
    if status:
        status("checking")
    try:
        weights = verify(pth, expected)
    except DownloadError:
        pth.unlink(missing_ok=True)  # a bad file would only be "resumed" into a longer bad file
        raise
    digest = sha256(pth)
    size = pth.stat().st_size
    _check(cancel)
    if status:
        status("installing")
    provenance = {"kind": "official", "source_url": address, "source_size": size,
                  "source_sha256": digest,
                  "downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    installed = install_weights(weights, task, source=pth, name=pth.stem, kind="official",
                                provenance=provenance)
    set_default(task, installed)
    if not keep:
        pth.unlink(missing_ok=True)
    return Downloaded(task, installed, address, size, digest, pth if keep else None)


class Rate:
    """Speed and time left of a transfer, smoothed over the last few seconds."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._window, self._clock = window, clock
        self._samples: list[tuple[float, int]] = []

    def update(self, done: int, total: int | None) -> tuple[float | None, float | None]:
        """(bytes per second, seconds left), None while unknown."""
        now = self._clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.pop(0)
        t0, d0 = self._samples[0]
        if now - t0 < 0.5 or done <= d0:
            return None, None
        speed = (done - d0) / (now - t0)
        left = (total - done) / speed if total else None
        return speed, left


class Throttle:
    """Passes a transfer's ``(done, total)`` on to ``progress`` only when it says something new:
    ``interval`` seconds since the last call passed on, or (``each_percent``) another whole
    percent of a known total; the first call, the last (``done == total``), a restart (fewer
    bytes than before) and a new total always. The transfer reports every 64 KiB chunk: the
    CLI's lines and the app's progress bar need a few a second."""

    def __init__(self, progress: Progress, interval: float, *, each_percent: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self._progress, self._interval, self._each_percent, self._clock = (
            progress, interval, each_percent, clock)
        self._last: tuple[float, int, int | None] | None = None  # (when, done, total) passed on

    def __call__(self, done: int, total: int | None) -> None:
        now = self._clock()
        if self._last is not None:
            when, before, known = self._last
            news = (done == total or done < before or total != known or now - when >= self._interval
                    or (self._each_percent and total and 100 * done // total != 100 * before // total))
            if not news:
                return
        self._last = (now, done, total)
        self._progress(done, total)
