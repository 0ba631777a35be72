"""The ``readmit`` command line: one sub-app per area, assembled in :mod:`readmit.cli.main`."""

from readmit.cli.main import app, main

__all__ = ["app", "main"]
