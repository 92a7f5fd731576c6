"""The content store: long texts (and attachments) kept whole outside Temporal.

A ticket's events keep an excerpt of a long text and its SHA-256; the text itself is
written here once, by that digest, in ``TRAMITA_ATTACHMENTS_DIR``. Writes are atomic
(a temporary file, synced, then renamed), so a reader never sees half a file and a
crash never leaves one under its digest. API, worker and mail listener share the
directory (compose mounts one volume in each).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from workflows.models import StoredText


class ContentStore:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return self._directory / sha256[:2] / sha256

    def put(self, data: bytes) -> StoredText:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return StoredText(sha256=sha256, bytes=len(data))

    def put_text(self, text: str) -> StoredText:
        return self.put(text.encode())

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
