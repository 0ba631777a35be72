"""Download the UCI data set once, check it is the expected file, and keep it in a cache.

The download itself is pooch's (streamed to a temporary file, retried on a broken connection or
a failed check, moved into place only when it passed). The cache is ``$XDG_CACHE_HOME/readmit``
(or ``~/.cache/readmit``). A file is kept only once it is known to be the UCI data: its sha256
is the known one (``sha256=``, or the older UCI distribution's), or the zip holds
``diabetic_data.csv`` (either layout) with the 50 UCI columns and 101,766 data rows — the
official URL serves a republished archive whose bytes are not pinned.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import uuid
import zipfile
from pathlib import Path

from readmit.config import ENV_RAW
from readmit.data.raw import CSV_MEMBER
from readmit.data.schema import RAW_SCHEMA
from readmit.errors import ReadmitInputError

UCI_URL = (
    "https://archive.ics.uci.edu/static/public/296/"
    "diabetes+130-us+hospitals+for+years+1999-2008.zip"
)
CACHE_FILE = "diabetes-130-us-hospitals-1999-2008.zip"
UCI_ROWS = 101_766
# sha256 of the older UCI distribution (dataset_diabetes/ folder inside the zip).
KNOWN_SHA256 = frozenset({"3a17a3b55b6dd4a1926703185c0ad8e2ed30bc8e2f9b927cdd1000b733d1de8e"})
RETRIES = 2
_MANUAL_FIX = (
    f"download {UCI_URL} by hand (any machine with internet access), then pass it with "
    f"`--raw PATH` or set {ENV_RAW[0]}=PATH"
)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/readmit``, else ``~/.cache/readmit`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "readmit"


def verify_uci_zip(path: Path | str) -> str | None:
    """Return None when ``path`` is the UCI data, else the reason it is not."""
    with open(path, "rb") as fh:
        if hashlib.file_digest(fh, "sha256").hexdigest() in KNOWN_SHA256:
            return None
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == CSV_MEMBER]
            if not members:
                return f"the zip has no {CSV_MEMBER}"
            with archive.open(min(members, key=len)) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                header = next(csv.reader([text.readline()]), [])
                rows = sum(1 for line in text if line.strip())
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, EOFError) as exc:
        return f"not a readable zip ({type(exc).__name__}: {exc})"
    if [h.strip().lstrip("\ufeff") for h in header] != list(RAW_SCHEMA):
        return f"{CSV_MEMBER} does not have the {len(RAW_SCHEMA)} UCI columns"
    if rows != UCI_ROWS:
        return f"{CSV_MEMBER} has {rows:,} data rows, expected {UCI_ROWS:,}"
    return None


def cached_raw(cache_dir: Path | None = None) -> Path | None:
    """The cached UCI zip if it is there (not re-verified: it was checked when stored)."""
    path = (cache_dir or default_cache_dir()) / CACHE_FILE
    return path if path.is_file() else None


class _NotUCI(ValueError):
    """The downloaded file is not the UCI data (a ValueError: pooch retries, then re-raises it)."""


def _verified(download):
    """A pooch downloader that refuses (before the file is moved into the cache) what is not UCI."""

    def run(url: str, output_file: str, pooch_: object) -> None:
        download(url, output_file, pooch_)
        problem = verify_uci_zip(output_file)
        if problem is not None:
            raise _NotUCI(problem)

    return run


def fetch_uci(
    cache_dir: Path | str | None = None,
    *,
    url: str = UCI_URL,
    sha256: str | None = None,
    force: bool = False,
    timeout: float = 60,
    retries: int = RETRIES,
) -> Path:
    """Return the cached UCI zip, downloading and checking it first if needed (or ``force``).

    ``sha256`` pins the bytes of the file at ``url`` (a mirror, an archived copy); without it the
    content is checked instead. A failed download or check is retried ``retries`` times; a
    failed refresh keeps the copy already cached.
    """
    import pooch
    import requests

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / CACHE_FILE
    if target.is_file() and not force and verify_uci_zip(target) is None:
        return target
    staging = f".download-{uuid.uuid4().hex}-{CACHE_FILE}"
    fetcher = pooch.create(
        path=folder, base_url="", registry={staging: f"sha256:{sha256}" if sha256 else None},
        urls={staging: url}, retry_if_failed=retries,
    )
    pooch.get_logger().setLevel("WARNING")
    downloader = _verified(pooch.HTTPDownloader(timeout=timeout, progressbar=False))
    try:
        downloaded = Path(fetcher.fetch(staging, downloader=downloader))
    except requests.exceptions.HTTPError as exc:
        response = exc.response
        raise ReadmitInputError(
            f"the server answered HTTP {response.status_code} ({response.reason}) for {url}",
            source=url,
            fix=f"retry later (`readmit data fetch --force`), or {_MANUAL_FIX}",
        ) from exc
    except requests.exceptions.RequestException as exc:  # offline, refused, DNS, timeout
        raise ReadmitInputError(
            f"this machine could not reach UCI at {url} ({type(exc).__name__})",
            source=url,
            fix=_MANUAL_FIX,
        ) from exc
    except ValueError as exc:  # _NotUCI, or pooch's sha256 mismatch
        raise ReadmitInputError(
            f"the downloaded file is not the expected UCI data: {exc}",
            source=url,
            fix=f"retry later (`readmit data fetch --force`), or {_MANUAL_FIX}",
        ) from exc
    os.replace(downloaded, target)
    return target


def resolve_raw(raw: str | None, cache_dir: Path | None = None) -> str:
    """The raw input to use: ``raw`` (the resolved ``Settings.raw_path``), else the cached UCI zip.

    Never touches the network, and never reads ``READMIT_RAW`` (``load_settings`` did, once);
    raises ``ReadmitInputError`` saying how to get the data.
    """
    if raw:
        return str(raw)
    cached = cached_raw(cache_dir)
    if cached is not None:
        return str(cached)
    raise ReadmitInputError(
        f"no raw input given and no cached UCI data in {cache_dir or default_cache_dir()}",
        fix=f"run `readmit data fetch` to download it, or {_MANUAL_FIX}",
    )
