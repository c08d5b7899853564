"""Where the repository's own files are: computed once, here, from this file's place."""

from __future__ import annotations

from pathlib import Path

#: The repository root: relative paths in settings are taken from here, not the cwd.
ROOT = Path(__file__).resolve().parents[2]
#: The bundled data set (``data/README.md`` gives its provenance).
DATA_DIR = ROOT / "data"
