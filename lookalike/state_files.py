"""The small JSON files that long, resumable jobs keep their progress and facts in.

Written atomically and durably (a reader, or a job resumed after a crash, sees the old file or
the new one, never half of one); read as None when missing or unreadable, which a resuming job
treats as "not done yet".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON (values JSON cannot hold are written as text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def read_json(path: Path) -> Any | None:
    """What :func:`write_json` wrote, or None when there is no readable file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
