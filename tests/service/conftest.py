"""Fixtures of the service tests: a real FHIR server on loopback (:mod:`service.fhir_server`)."""

from __future__ import annotations

import pytest

from service.fhir_server import AcceptRecorder, FhirServer


@pytest.fixture
def fhir_server():
    """A started loopback FHIR server; publish resources with ``fhir_server.serve(prefetch, context)``."""
    server = FhirServer().start()
    yield server
    server.stop()


@pytest.fixture
def accept_recorder():
    """A listening socket on loopback that records every connection it accepts."""
    recorder = AcceptRecorder()
    yield recorder
    recorder.close()
