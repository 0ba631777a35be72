"""The model registry: versioned, checksummed model artifacts in a folder or on S3.

It stores bytes and metadata and knows nothing of how a model is trained: it sits on the ground
floor (``config``, ``storage``, ``errors``) beside ``data``. See :mod:`readmit.registry.store`.
"""

from readmit.registry.store import COMPARISON_FILE, Registry, new_version, sha256_hex

__all__ = ["COMPARISON_FILE", "Registry", "new_version", "sha256_hex"]
