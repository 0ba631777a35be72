"""Fetching the UCI zip: a real local HTTP server, an unreachable address, the cache, resolve.

No network: the "download" is a copy of the real zip served by http.server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from readmit.config import ENV_RAW, load_settings
from readmit.data.fetch import (
    CACHE_FILE,
    KNOWN_SHA256,
    UCI_URL,
    default_cache_dir,
    fetch_uci,
    resolve_raw,
    verify_uci_zip,
)
from readmit.errors import ReadmitInputError


class _QuietHandler(SimpleHTTPRequestHandler):
    failures_left = 0  # the next requests answered 503 (a flaky server), set per test

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_error(503, "try again")
            return
        super().do_GET()


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving the folder it returns; yields (base URL, folder)."""
    folder = tmp_path / "www"
    folder.mkdir()
    _QuietHandler.failures_left = 0
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uci_url_is_the_official_download() -> None:
    assert UCI_URL == (
        "https://archive.ics.uci.edu/static/public/296/"
        "diabetes+130-us+hospitals+for+years+1999-2008.zip"
    )


def test_downloads_verifies_and_caches(
    http_folder: tuple[str, Path], uci_zip: Path, tmp_path: Path
) -> None:
    base, folder = http_folder
    shutil.copy(uci_zip, folder / "uci.zip")
    cache = tmp_path / "cache"
    path = fetch_uci(cache, url=f"{base}/uci.zip")
    assert path == cache / CACHE_FILE
    assert path.read_bytes() == uci_zip.read_bytes()
    assert [p.name for p in cache.iterdir()] == [CACHE_FILE]  # no temporary file left
    (folder / "uci.zip").unlink()  # a second call uses the cache, not the network
    assert fetch_uci(cache, url=f"{base}/uci.zip") == path
    with pytest.raises(ReadmitInputError, match="HTTP 404"):
        fetch_uci(cache, url=f"{base}/uci.zip", force=True, retries=0)
    assert path.read_bytes() == uci_zip.read_bytes()  # a failed refresh keeps the good copy
    assert [p.name for p in cache.iterdir()] == [CACHE_FILE]


def test_a_flaky_server_is_retried(http_folder: tuple[str, Path], uci_zip: Path, tmp_path: Path) -> None:
    base, folder = http_folder
    shutil.copy(uci_zip, folder / "uci.zip")
    _QuietHandler.failures_left = 1
    with pytest.raises(ReadmitInputError, match="HTTP 503"):
        fetch_uci(tmp_path / "once", url=f"{base}/uci.zip", retries=0)
    _QuietHandler.failures_left = 1
    path = fetch_uci(tmp_path / "cache", url=f"{base}/uci.zip", retries=1)
    assert path.read_bytes() == uci_zip.read_bytes() and _QuietHandler.failures_left == 0


def test_a_pinned_sha256_is_checked(http_folder: tuple[str, Path], uci_zip: Path, tmp_path: Path) -> None:
    base, folder = http_folder
    shutil.copy(uci_zip, folder / "uci.zip")
    (known,) = KNOWN_SHA256
    assert fetch_uci(tmp_path / "ok", url=f"{base}/uci.zip", sha256=known).is_file()
    with pytest.raises(ReadmitInputError, match="not the expected UCI data") as err:
        fetch_uci(tmp_path / "bad", url=f"{base}/uci.zip", sha256="0" * 64, retries=0)
    assert "SHA256" in str(err.value) or "sha256" in str(err.value)
    assert list((tmp_path / "bad").iterdir()) == []


def test_current_layout_zip_passes_verification(
    http_folder: tuple[str, Path], uci_zip_current_layout: Path, tmp_path: Path
) -> None:
    base, folder = http_folder
    shutil.copy(uci_zip_current_layout, folder / "new.zip")
    path = fetch_uci(tmp_path / "cache", url=f"{base}/new.zip")
    assert verify_uci_zip(path) is None


def test_wrong_file_is_refused_and_not_cached(http_folder: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = http_folder
    (folder / "page.html").write_text("<html>maintenance</html>")
    cache = tmp_path / "cache"
    with pytest.raises(ReadmitInputError) as err:
        fetch_uci(cache, url=f"{base}/page.html", retries=0)
    assert "not the expected UCI data" in str(err.value) and "not a readable zip" in str(err.value)
    assert list(cache.iterdir()) == []


def test_unreachable_host_says_how_to_proceed(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/uci.zip"
    with pytest.raises(ReadmitInputError) as err:
        fetch_uci(tmp_path / "cache", url=url, timeout=5, retries=0)
    message = str(err.value)
    assert f"this machine could not reach UCI at {url}" in message
    assert "--raw PATH" in message and f"{ENV_RAW[0]}=PATH" in message and UCI_URL in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "readmit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "readmit"
    assert not (tmp_path / "home").exists()


def test_resolve_raw_prefers_the_settings_raw_path_then_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_RAW[0], raising=False)
    monkeypatch.setenv("READMIT_CONFIG", str(tmp_path / "none.json"))
    (tmp_path / "none.json").write_text("{}")
    cache = tmp_path / "cache"
    with pytest.raises(ReadmitInputError) as err:
        resolve_raw(load_settings().raw_path, cache)
    assert "no raw input given" in str(err.value) and "readmit data fetch" in str(err.value)
    cache.mkdir()
    (cache / CACHE_FILE).write_bytes(b"zip")
    assert resolve_raw(None, cache) == str(cache / CACHE_FILE)
    # READMIT_RAW is read once, by load_settings; resolve_raw never looks at the environment.
    monkeypatch.setenv(ENV_RAW[0], "/data/env.zip")
    assert resolve_raw(None, cache) == str(cache / CACHE_FILE)
    assert resolve_raw(load_settings().raw_path, cache) == "/data/env.zip"
    assert resolve_raw(load_settings(raw="s3://bucket/raw.zip").raw_path, cache) == "s3://bucket/raw.zip"
