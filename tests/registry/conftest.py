"""A registry root on each backend: a local folder and a bucket on the moto server."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])  # S3 is slow: conftest.py
def registry_uri(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "registry")
    return f"{request.getfixturevalue('s3_uri')}/registry"
