"""Downloading the authors' weights: a real HTTP server on 127.0.0.1, never the internet.

The transfer (resume, restart, retries, stall, cancel, disk space) is tested on
plain bytes through :func:`cmfnet_core.download.fetch`; the whole path
(download, check, install, restore) through the ``cmfnet`` command, with a
checkpoint shaped exactly like the authors' release files.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from cmfnet_core import download
from cmfnet_core.download import DownloadError, download_weights, fetch
from cmfnet_core.engine import Cancelled, CancelToken
from cmfnet_core.weights import default_weights, installed_weights, user_weights_dir
from tests.conftest import ROOT
from tests.test_cli import FAST, cmfnet

PAYLOAD = os.urandom(600_000)  # ten chunks' worth: room to cut, stall and resume
FAST_RETRY = dict(backoff=0.01, stall_timeout=5.0)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the transfer ------------------------------------------------------------------------

def test_a_dropped_connection_is_resumed_fetching_only_the_rest(weights_server, tmp_path):
    url = weights_server.add("w.pth", PAYLOAD, cut_at=250_000, cuts=1)
    seen = []
    dest = fetch(url, tmp_path / "w.pth", progress=lambda done, total: seen.append((done, total)),
                 **FAST_RETRY)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "w.pth.part").exists()
    first, second = weights_server.for_path("w.pth")
    assert (first.range, first.sent) == (None, 250_000)
    assert second.range == "bytes=250000-" and second.sent == len(PAYLOAD) - 250_000
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_an_interrupted_download_keeps_its_part_and_the_next_run_fetches_the_rest(weights_server, tmp_path):
    url = weights_server.add("w.pth", PAYLOAD, cut_at=200_000, cuts=3)
    with pytest.raises(DownloadError, match="gave up after 2 retries.*run it again to resume"):
        fetch(url, tmp_path / "w.pth", retries=2, **FAST_RETRY)
    assert (tmp_path / "w.pth.part").stat().st_size == 200_000
    assert not (tmp_path / "w.pth").exists()
    fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
    assert weights_server.requests[-1].sent == len(PAYLOAD) - 200_000


def test_a_server_that_ignores_range_restarts_the_file_cleanly(weights_server, tmp_path):
    url = weights_server.add("w.pth", PAYLOAD, ranges=False)
    (tmp_path / "w.pth.part").write_bytes(b"x" * 1000)  # a stale part that must not be kept
    fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
    assert weights_server.requests[0].range == "bytes=1000-"


def test_a_part_longer_than_the_file_gets_416_and_starts_over(weights_server, tmp_path):
    url = weights_server.add("w.pth", PAYLOAD)
    (tmp_path / "w.pth.part").write_bytes(b"x" * (len(PAYLOAD) + 10))
    fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
    assert [r.range for r in weights_server.requests] == [f"bytes={len(PAYLOAD) + 10}-", None]


def test_a_stall_is_retried_and_resumed(weights_server, tmp_path):
    url = weights_server.add("w.pth", PAYLOAD, stall_at=300_000, stalls=1)
    fetch(url, tmp_path / "w.pth", backoff=0.01, stall_timeout=0.5)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
    assert weights_server.requests[-1].range == "bytes=300000-"


def test_cancel_from_another_thread_stops_a_stalled_download_within_a_second(weights_server, tmp_path):
    url = weights_server.add("w.pth", PAYLOAD, stall_at=300_000, stalls=1)
    token, arrived = CancelToken(), threading.Event()

    def progress(done, total):
        if done >= 300_000:
            arrived.set()

    def cancel_when_stalled():
        arrived.wait(10)
        time.sleep(0.3)  # the server is silent now
        token.cancel()

    threading.Thread(target=cancel_when_stalled).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        fetch(url, tmp_path / "w.pth", progress=progress, cancel=token, stall_timeout=30)
    assert time.monotonic() - started < 0.3 + 1.5
    assert (tmp_path / "w.pth.part").read_bytes() == PAYLOAD[:300_000]


def test_a_second_download_of_the_same_file_at_once_is_refused(weights_server, tmp_path):
    import fcntl

    url = weights_server.add("w.pth", PAYLOAD)
    with open(tmp_path / "w.pth.part", "ab") as running:  # as the app's download would hold it
        fcntl.flock(running.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadError, match="another download of this file is under way"):
            fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert (tmp_path / "w.pth.part").stat().st_size == 0


def test_a_missing_file_is_one_clear_error_and_not_retried(weights_server, tmp_path):
    with pytest.raises(DownloadError, match="not found \\(HTTP 404\\)") as error:
        fetch(weights_server.url("gone.pth"), tmp_path / "w.pth", **FAST_RETRY)
    assert error.value.reason == "http" and len(weights_server.requests) == 1


def test_a_server_error_is_retried(weights_server, tmp_path):
    weights_server.add("w.pth", PAYLOAD, status=503)
    with pytest.raises(DownloadError, match="HTTP 503; gave up after 1 retry "):
        fetch(weights_server.url("w.pth"), tmp_path / "w.pth", retries=1, **FAST_RETRY)
    assert len(weights_server.requests) == 2


def test_not_enough_disk_space_stops_before_writing(weights_server, tmp_path, monkeypatch):
    url = weights_server.add("w.pth", PAYLOAD)
    monkeypatch.setattr(download, "free_bytes", lambda folder: 100_000)
    with pytest.raises(DownloadError, match="not enough free disk space.*0.1 MB free") as error:
        fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert error.value.reason == "disk"
    assert not (tmp_path / "w.pth.part").exists() and not (tmp_path / "w.pth").exists()


def test_an_html_page_served_as_a_page_is_refused_before_its_body(weights_server, tmp_path):
    url = weights_server.add("w.pth", b"<!DOCTYPE html><html>Sign in to the Wi-Fi</html>",
                             content_type="text/html; charset=utf-8")
    with pytest.raises(DownloadError, match="a web page \\(HTML\\) arrived") as error:
        fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert error.value.reason == "content" and not (tmp_path / "w.pth.part").exists()


def test_the_mirror_variable_replaces_the_base_and_keeps_the_names(monkeypatch):
    assert download.source_url("dehaze") == download.BASE_URL + "dehaze_I_OHaze_CMFNet.pth"
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", "https://mirror.example.org/cmfnet")
    assert download.source_url("deraindrop") == \
        "https://mirror.example.org/cmfnet/deraindrop_DeRainDrop_CMFNet.pth"
    assert download.source_url("deblur", "http://x/y.pth") == "http://x/y.pth"


def test_proxy_settings_come_from_the_environment(monkeypatch, weights_server, tmp_path):
    """HTTPS_PROXY/HTTP_PROXY are used; NO_PROXY exempts hosts (here: a dead proxy, bypassed)."""
    url = weights_server.add("w.pth", PAYLOAD)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(DownloadError, match="the proxy http://127.0.0.1:9 cannot be reached") as error:
        fetch(url, tmp_path / "w2.pth", **FAST_RETRY)
    assert error.value.reason == "proxy"


# --- progress --------------------------------------------------------------------------

class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttled_progress_passes_on_the_first_the_last_and_a_few_a_second():
    clock, seen = Clock(), []
    throttle = download.Throttle(lambda done, total: seen.append(done), 0.25, clock=clock)
    for done in range(0, 1000, 10):  # a hundred chunks in no time: the first only
        throttle(done, 1000)
    assert seen == [0]
    clock.now += 0.25
    throttle(500, 1000)
    throttle(510, 1000)
    throttle(1000, 1000)  # the end is always said
    assert seen == [0, 500, 1000]
    throttle(0, 1000)  # a restart from byte 0 is news
    throttle(5, None)  # and so is a total no longer known
    assert seen == [0, 500, 1000, 0, 5]


def test_throttled_progress_can_also_move_per_percent():
    clock, seen = Clock(), []
    throttle = download.Throttle(lambda done, total: seen.append(done), 0.25, each_percent=True, clock=clock)
    for done in range(0, 100_001, 100):  # a thousand chunks at once: one call per percent
        throttle(done, 100_000)
    assert seen == list(range(0, 100_001, 1000))
    seen.clear()
    for done in range(200):  # no total: the time decides, once every four 1/16 s chunks
        throttle(done, None)
        clock.now += 0.0625
    assert seen == list(range(0, 200, 4))


def test_the_cli_prints_progress_lines_a_few_times_a_second_not_per_chunk(weights_server, tmp_path, capsys):
    from cmfnet_core.weights_commands import _Bar

    url = weights_server.add("w.pth", PAYLOAD * 8)  # 80 chunks, in well under a second here
    started = time.monotonic()
    fetch(url, tmp_path / "w.pth", progress=_Bar("deblur", lines=True, quiet=False))
    elapsed = time.monotonic() - started
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("PROGRESS ")]
    assert lines[0].startswith("PROGRESS 0 ") and lines[-1].startswith(f"PROGRESS {len(PAYLOAD) * 8} ")
    assert len(lines) <= 2 + elapsed / 0.25 + 1


# --- check and install -----------------------------------------------------------------

def test_download_installs_the_authors_weights_and_restore_uses_them(weights_server, full_size_checkpoint,
                                                                     photo_file, monkeypatch):
    weights_server.add("deblur_GoPro_CMFNet.pth", full_size_checkpoint)
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", weights_server.base)
    result = cmfnet("weights", "download", "deblur", "--progress-lines")
    assert result.returncode == 0, result.stderr
    installed = default_weights("deblur")
    assert result.stdout.strip() == str(installed.path)
    assert installed.description.startswith("the authors' (full-size), downloaded 20")
    provenance = installed.meta["provenance"]
    assert provenance["source_url"] == weights_server.url("deblur_GoPro_CMFNet.pth")
    assert provenance["source_size"] == len(full_size_checkpoint)
    assert provenance["source_sha256"] == _sha(full_size_checkpoint) and _sha(full_size_checkpoint) in result.stderr
    assert "PROGRESS 0 " in result.stderr and f"PROGRESS {len(full_size_checkpoint)} " in result.stderr
    # the optimizer's two Adam moments are dropped: the model alone is a third of the download
    assert installed.path.stat().st_size < len(full_size_checkpoint) / 2.5
    assert sorted(p.name for p in (user_weights_dir() / "deblur").iterdir()) == [
        "deblur_GoPro_CMFNet.json", "deblur_GoPro_CMFNet.pdparams"]
    listing = cmfnet("weights", "list").stdout
    assert "* the authors' (full-size), downloaded" in listing and "  light, bundled" in listing

    restored = cmfnet("restore", photo_file, "--task", "deblur", "-q", *FAST[:2], "--tile", "128")
    assert restored.returncode == 0, restored.stderr
    with_download = photo_file.with_name("holiday photo.deblur.png").read_bytes()
    bundled = cmfnet("restore", photo_file, "--task", "deblur", "-q", *FAST, "--weights",
                     ROOT / "resources" / "weights" / "deblur.pdparams", "-o", photo_file.with_name("b.png"))
    assert bundled.returncode == 0 and photo_file.with_name("b.png").read_bytes() != with_download


def test_use_switches_between_bundled_and_the_authors_and_remove_deletes_the_download(
        weights_server, full_size_checkpoint, monkeypatch):
    url = weights_server.add("deblur_GoPro_CMFNet.pth", full_size_checkpoint)
    download_weights("deblur", url=url, **FAST_RETRY)
    assert default_weights("deblur").downloaded
    used = cmfnet("weights", "use", "deblur", "bundled")
    assert used.returncode == 0 and "deblur now uses: light, bundled" in used.stderr
    assert default_weights("deblur").bundled
    assert cmfnet("weights", "use", "deblur", "official").returncode == 0
    assert default_weights("deblur").downloaded
    removed = cmfnet("weights", "remove", "deblur")
    assert removed.returncode == 0 and "deblur_GoPro_CMFNet.pdparams" in removed.stdout
    assert default_weights("deblur").bundled and not any(e.downloaded for e in installed_weights("deblur"))
    again = cmfnet("weights", "download", "deblur", "--url", url)  # after remove: fetched anew
    assert again.returncode == 0 and "installed and used by default" in again.stderr
    requests = len(weights_server.requests)
    assert cmfnet("weights", "use", "deblur", "bundled").returncode == 0
    same = cmfnet("weights", "download", "deblur", "--url", url)
    assert same.returncode == 0 and "already installed, and now used by default" in same.stderr
    assert len(weights_server.requests) == requests and default_weights("deblur").downloaded
    assert cmfnet("weights", "remove", "deblur").returncode == 0
    refused = cmfnet("weights", "use", "deblur", "official")
    assert refused.returncode == 3 and "cmfnet weights download deblur" in refused.stderr


def test_use_a_file_imports_it_and_makes_it_the_default(small_weights):
    result = cmfnet("weights", "use", "dehaze", small_weights)
    assert result.returncode == 0, result.stderr
    assert "dehaze now uses: imported from small_official.pth (light)" in result.stderr
    assert default_weights("dehaze").path == user_weights_dir() / "dehaze" / "small_official.pdparams"


@pytest.mark.parametrize("served, said", [
    ("html", "a web page \\(HTML, 0.0 MB\\) arrived instead of the weights file"),
    ("truncated", "is not usable weights: .*truncated|is not usable weights: .*(incomplete|damaged|corrupt)"),
    ("small network", "holds a different CMFNet \\(0.[0-9] M parameters, the authors' has 17.[0-9] M\\)"),
])
def test_a_file_that_is_not_the_authors_network_is_refused_and_nothing_installed(
        weights_server, small_weights, served, said, monkeypatch):
    body = {"html": b"<!DOCTYPE html>\n<html><body>Please sign in</body></html>",
            "truncated": small_weights.read_bytes()[:3_000_000],
            "small network": small_weights.read_bytes()}[served]
    weights_server.add("deblur_GoPro_CMFNet.pth", body)  # served as a file, whatever it holds
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", weights_server.base)
    result = cmfnet("weights", "download", "deblur", "-q")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmfnet: error: deblur: "), result.stderr
    assert re.search(said, lines[0]), lines[0]
    assert not any(not e.bundled for e in installed_weights("deblur"))
    assert not (user_weights_dir() / "deblur").exists() or not any((user_weights_dir() / "deblur").iterdir())


def test_connection_refused_is_one_line_and_exit_3():
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cmfnet("weights", "download", "dehaze", "--url", f"http://127.0.0.1:{port}/x.pth")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection was refused" in lines[0], result.stderr
    assert "download dehaze_I_OHaze_CMFNet.pth by hand from https://github.com/FanChiMao/CMFNet/releases" in lines[0]


def test_ctrl_c_stops_the_download_keeps_the_part_and_exits_130(weights_server, monkeypatch):
    weights_server.add("deraindrop_DeRainDrop_CMFNet.pth", PAYLOAD, stall_at=400_000, stalls=1)
    monkeypatch.setenv("CMFNET_WEIGHTS_MIRROR", weights_server.base)
    process = subprocess.Popen([sys.executable, "-m", "cmfnet_core.cli", "weights", "download",
                                "deraindrop", "--progress-lines"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = user_weights_dir() / "deraindrop" / "deraindrop_DeRainDrop_CMFNet.pth.part"
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size == 400_000) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the server has gone silent at byte 400 000
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 130 and time.monotonic() - started < 1.5
    assert f"partial download is kept ({part})" in rest and "run the same command to resume" in rest
    assert part.read_bytes() == PAYLOAD[:400_000]
    assert not (user_weights_dir() / "deraindrop" / "deraindrop_DeRainDrop_CMFNet.pdparams").exists()


def test_remove_deletes_what_an_interrupted_download_left_behind():
    folder = user_weights_dir() / "dehaze"
    folder.mkdir(parents=True)
    part = folder / "dehaze_I_OHaze_CMFNet.pth.part"
    part.write_bytes(PAYLOAD[:1000])
    result = cmfnet("weights", "remove", "dehaze")
    assert result.returncode == 0 and result.stdout.split() == [str(part)], result.stderr
    assert not part.exists()


def test_the_sidecar_records_where_the_weights_came_from(weights_server, full_size_checkpoint):
    url = weights_server.add("any.pth", full_size_checkpoint)
    result = download_weights("dehaze", url=url, keep=True, **FAST_RETRY)
    meta = json.loads(result.path.with_suffix(".json").read_text())
    assert meta["task"] == "dehaze" and meta["provenance"]["kind"] == "official"
    assert set(meta["provenance"]) >= {"source_url", "source_size", "source_sha256", "downloaded"}
    assert result.kept.read_bytes() == full_size_checkpoint  # --keep: the .pth stays


def test_a_server_that_never_answers_is_tried_twice_not_for_minutes(tmp_path):
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel does), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/w.pth"
        started = time.monotonic()
        with pytest.raises(DownloadError, match="no answer from the server in 0.5 s; gave up after 1 retry ") as error:
            fetch(url, tmp_path / "w.pth", connect_timeout=0.5, stall_timeout=0.5, retries=4, backoff=0.01)
    assert error.value.reason == "stalled" and time.monotonic() - started < 3


@pytest.fixture
def https_server(tmp_path):
    """The test server over HTTPS with a self-signed certificate for 127.0.0.1."""
    import shutil

    from tests.weights_server import WeightsServer

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = WeightsServer(certificate=(str(cert), str(key))).start()
    yield server, cert
    server.stop()


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_an_untrusted_certificate_is_named_and_a_ca_bundle_variable_trusts_it(https_server, tmp_path,
                                                                             monkeypatch, variable):
    server, cert = https_server
    url = server.add("w.pth", PAYLOAD)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DownloadError, match="certificate is not trusted.*SSL_CERT_FILE") as error:
        fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert error.value.reason == "certificate"
    monkeypatch.setenv(variable, str(cert))  # as for a company proxy's own certificate
    fetch(url, tmp_path / "w.pth", **FAST_RETRY)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
