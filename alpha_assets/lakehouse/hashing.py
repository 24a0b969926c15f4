"""Content hashes of lakehouse files: data versions and the fingerprints recorded in run artifacts."""

from __future__ import annotations

import hashlib

from alpha_assets.lakehouse.storage import DataPath, as_data_path


def file_sha256(path: DataPath) -> str:
    """The sha256 hex digest of a file's bytes: its data version and its fingerprint in run artifacts."""
    digest = hashlib.sha256()
    with as_data_path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()
