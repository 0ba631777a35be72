"""The report in a real headless browser: it draws, logs no error and fetches nothing.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it when
missing) or ``READMIT_CHROMIUM=/path/to/chrome``. Locally::

    pytest tests/report/test_browser.py

The browser is driven over the DevTools protocol (see ``tests/report/browser.py``): every request
the page makes and every console error is recorded, and a full-page screenshot is taken.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from readmit import pipeline
from report.browser import chromium_binary, open_page


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium not found: `apt-get install -y chromium` (or set READMIT_CHROMIUM to a Chrome binary)")
    return binary


def _pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")[..., :3]


def test_the_probe_sees_requests_and_errors(chromium, tmp_path):
    """A page that fetches a remote image and logs an error is caught: the checks below can fail."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><h1>x</h1><img src="https://example.invalid/a.png">'
                    '<script>console.error("boom"); notDefined();</script></body></html>')
    visit = open_page(page.as_uri())
    assert "https://example.invalid/a.png" in visit.requests
    assert any("boom" in e for e in visit.errors) and any("notDefined" in e for e in visit.errors)


def test_report_renders_without_errors_or_network(chromium, registry_copy, tmp_path):
    result = pipeline.build_report(registry_copy)
    path = Path(result["path"])
    visit = open_page(path.as_uri(), width=1280)
    assert visit.loaded
    assert visit.requests == [path.as_uri()], visit.requests  # the file itself, nothing else
    assert visit.errors == []
    pixels = _pixels(visit.png)
    height, width = pixels.shape[:2]
    assert width >= 1280 and height > 3000  # the whole page, nine sections long
    assert pixels.std() > 0.05  # not blank
    ink = (pixels.mean(axis=2) < 0.6).mean()
    assert ink > 0.01, ink  # text and plots drawn, not only backgrounds
    (tmp_path / "report.png").write_bytes(visit.png)
