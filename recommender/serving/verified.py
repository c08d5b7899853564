"""Checksums verified once per file version, recorded in a stamp beside the file.

Hashing every byte of a cache at each start costs as much as reading it (1.2
GB of EASE weights at the 2020 shape), and reading it is what memory-mapping
avoids. So a file's sha256 is checked once, and a stamp records which
*version* of the file passed: its size, inode, device, modification and
change times (``st_ctime_ns`` cannot be set back by any user-level write, so a
file written in place after the check never matches its stamp). A later start
whose file still has that version trusts the check; any other version (a
rewrite, a copy, a restored backup, a corrupted byte written through the file
system) is hashed again.

The stamp vouches only for the checksum the manifest gave; a stamp of
another checksum does not count.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def _version(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_ctime_ns]


def stamp_path(path: Path) -> Path:
    # Hidden, so it is never taken for a cache file; the manifest names no dot file.
    return path.with_name(f".{path.name}.verified")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_stamped(path: Path, sha256: str) -> bool:
    """True when ``path`` is the very version whose ``sha256`` was checked before."""
    try:
        stamp = json.loads(stamp_path(path).read_text(encoding="utf-8"))
        return (type(stamp) is dict and stamp.get("sha256") == sha256
                and stamp.get("version") == _version(path.stat()))
    except (OSError, ValueError, RecursionError):
        return False


def verify(path: Path, sha256: str) -> bool:
    """Whether ``path`` has checksum ``sha256``, hashing it only if no stamp vouches for it.

    A file that passes is stamped (best effort: a read-only cache directory just
    means hashing again next time).
    """
    if is_stamped(path, sha256):
        return True
    before = path.stat()
    if sha256_file(path) != sha256:
        return False
    if _version(path.stat()) != _version(before):  # changed while being hashed
        return False
    stamp(path, sha256, before)
    return True


def stamp(path: Path, sha256: str, stat: os.stat_result | None = None) -> None:
    """Record that this version of ``path`` (``stat``, default: as it is now) has ``sha256``."""
    tmp: str | None = None
    try:
        version = _version(stat or path.stat())
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"sha256": sha256, "version": version}, handle)
        os.replace(tmp, stamp_path(path))
    except OSError:  # a read-only directory: the file is hashed again next time
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
