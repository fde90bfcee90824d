"""One script per table of docs/performance.md (its command is there)."""
from __future__ import annotations

import json
from pathlib import Path


def save(out, name: str, table: str, data: dict) -> None:
    """NAME.md (the table) and NAME.json (the numbers and the library versions) in `out`."""
    from neurosim.recording import library_versions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({**data, "versions": library_versions()}, indent=2))
    (out / f"{name}.md").write_text(table + "\n")
