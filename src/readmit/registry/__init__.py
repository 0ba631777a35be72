"""The model registry: versioned, checksummed, optionally signed model artifacts, folder or S3.

It stores bytes and metadata and knows nothing of how a model is trained: it sits on the floor
above ``config``, ``storage`` and ``errors``, beside ``data``. Read it in this order:

- :mod:`readmit.registry.versions` -- version names (``YYYYMMDD_HHMMSS``), the patterns every
  name must match, and exclusive creation (a version is never overwritten);
- :mod:`readmit.registry.artifacts` -- sha256 checksums and HMAC signatures;
- :mod:`readmit.registry.store` -- :class:`Registry`: save, load, latest pointers, listing, gc.
"""

from readmit.registry.artifacts import sha256_hex
from readmit.registry.store import COMPARISON_FILE, Registry
from readmit.registry.versions import new_version

__all__ = ["COMPARISON_FILE", "Registry", "new_version", "sha256_hex"]
