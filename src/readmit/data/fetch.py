"""Download the UCI data set once, check it is the expected file, and keep it in a cache.

The cache is ``$XDG_CACHE_HOME/readmit`` (or ``~/.cache/readmit``). A download goes to a
temporary file next to the cached one and is moved into place only after it has been checked:
the zip opens, holds ``diabetic_data.csv`` (either layout) with the 50 UCI columns and 101,766
data rows (or is byte-for-byte the known older distribution).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

from readmit.data.raw import CSV_MEMBER
from readmit.data.schema import REQUIRED_COLUMNS
from readmit.errors import ReadmitInputError

UCI_URL = (
    "https://archive.ics.uci.edu/static/public/296/"
    "diabetes+130-us+hospitals+for+years+1999-2008.zip"
)
CACHE_FILE = "diabetes-130-us-hospitals-1999-2008.zip"
UCI_ROWS = 101_766
# sha256 of the older UCI distribution (dataset_diabetes/ folder inside the zip).
KNOWN_SHA256 = frozenset({"3a17a3b55b6dd4a1926703185c0ad8e2ed30bc8e2f9b927cdd1000b733d1de8e"})
RAW_ENV = "READMIT_RAW"
_MANUAL_FIX = (
    f"download {UCI_URL} by hand (any machine with internet access), then pass it with "
    f"`--raw PATH` or set {RAW_ENV}=PATH"
)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/readmit``, else ``~/.cache/readmit`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "readmit"


def verify_uci_zip(path: Path) -> str | None:
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
    if [h.strip().lstrip("\ufeff") for h in header] != list(REQUIRED_COLUMNS):
        return f"{CSV_MEMBER} does not have the {len(REQUIRED_COLUMNS)} UCI columns"
    if rows != UCI_ROWS:
        return f"{CSV_MEMBER} has {rows:,} data rows, expected {UCI_ROWS:,}"
    return None


def cached_raw(cache_dir: Path | None = None) -> Path | None:
    """The cached UCI zip if it is there (not re-verified: it was checked when stored)."""
    path = (cache_dir or default_cache_dir()) / CACHE_FILE
    return path if path.is_file() else None


def fetch_uci(
    cache_dir: Path | str | None = None,
    *,
    url: str = UCI_URL,
    force: bool = False,
    timeout: float = 60,
) -> Path:
    """Return the cached UCI zip, downloading and checking it first if needed (or ``force``)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / CACHE_FILE
    if target.is_file() and not force and verify_uci_zip(target) is None:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{uuid.uuid4().hex}-{CACHE_FILE}"
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
        except urllib.error.HTTPError as exc:
            raise ReadmitInputError(
                f"the server answered HTTP {exc.code} ({exc.reason}) for {url}",
                source=url,
                fix=f"retry later (`readmit data fetch --force`), or {_MANUAL_FIX}",
            ) from exc
        except (urllib.error.URLError, OSError) as exc:  # offline, refused, DNS, timeout
            reason = getattr(exc, "reason", None) or exc
            raise ReadmitInputError(
                f"this machine could not reach UCI at {url} ({reason})",
                source=url,
                fix=_MANUAL_FIX,
            ) from exc
        problem = verify_uci_zip(tmp)
        if problem is not None:
            raise ReadmitInputError(
                f"the downloaded file is not the expected UCI data: {problem}",
                source=url,
                fix=f"retry later (`readmit data fetch --force`), or {_MANUAL_FIX}",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_raw(raw: str | None, cache_dir: Path | None = None) -> str:
    """The raw input to use: ``raw``, else ``$READMIT_RAW``, else the cached UCI zip.

    Never touches the network; raises ``ReadmitInputError`` saying how to get the data.
    """
    chosen = raw or os.environ.get(RAW_ENV)
    if chosen:
        return str(chosen)
    cached = cached_raw(cache_dir)
    if cached is not None:
        return str(cached)
    raise ReadmitInputError(
        f"no raw input given and no cached UCI data in {cache_dir or default_cache_dir()}",
        fix=f"run `readmit data fetch` to download it, or {_MANUAL_FIX}",
    )
