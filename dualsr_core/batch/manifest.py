"""The manifest of a batch run: one JSON file beside the outputs, rewritten atomically after every scene.

    {"format": "dualsr-batch-manifest/1", "updated": "...", "options": {...},
     "scenes": [{"input", "output", "status", "seconds", "worker", "device", "sha256", "error", ...}]}

status is "done" (computed by this run), "skipped" (complete from an earlier run: its output still
has the recorded sha256 and the options were the same) or "failed" (with `error`, the reason).
A rerun recomputes every scene that is not complete, so the manifest is also the run's resume state.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ..errors import InputError

FORMAT = "dualsr-batch-manifest/1"
NAME = "manifest.json"
COMPLETE = ("done", "skipped")
FIELDS = ("input", "output", "status", "seconds", "worker", "device", "sha256", "error")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Manifest:
    """The records of a batch, by output path.

    Args:
        path: the manifest file (OUTPUT/manifest.json).
        options: what decides the outputs' pixels (method, scale, weights' sha256, tile, precision,
            ...); each record keeps their sha256, and one made with other options is never taken as
            complete.
    """

    def __init__(self, path: str | os.PathLike, options: dict):
        self.path = Path(path)
        self.options = options
        self.options_sha256 = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
        self.earlier: dict[str, dict] = {}
        self.records: dict[str, dict] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("format") != FORMAT:
                    raise ValueError(f"format {data.get('format')!r}")
                for record in data.get("scenes", []):
                    self.earlier[record["output"]] = record
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"The manifest '{self.path}' is not a DualSR batch manifest ({exc}); move it away "
                                 "or choose another OUTPUT folder.") from exc

    def complete(self, output: str, sha256_of) -> dict | None:
        """The earlier record of `output` when it is complete and still intact, else None.

        Args:
            output: the output path (as recorded).
            sha256_of: computes the sha256 of a file (only called when the record could count).
        """
        record = self.earlier.get(output)
        if not record or record.get("status") not in COMPLETE or record.get("options_sha256") != self.options_sha256:
            return None
        if not Path(output).is_file() or not record.get("sha256"):
            return None
        return record if sha256_of(output) == record["sha256"] else None

    def set(self, output: str, record: dict):
        self.records[output] = {**record, "output": output, "options_sha256": self.options_sha256,
                                "finished": now()}

    def save(self):
        """Write this run's records and the earlier complete ones of scenes not in this run, atomically:
        an earlier failure of a scene this run no longer has (its input removed, say) is not the
        current state."""
        kept = {output: r for output, r in self.earlier.items() if r.get("status") in COMPLETE}
        scenes = {**kept, **self.records}
        ordered = [{**{k: r.get(k) for k in FIELDS}, **r} for r in scenes.values()]
        text = json.dumps({"format": FORMAT, "updated": now(), "options": self.options, "scenes": ordered},
                          indent=2) + "\n"
        write_text_atomic(self.path, text)


def write_text_atomic(path: Path, text: str):
    """Replace `path` by `text` atomically: a reader sees the earlier file or the whole new one."""
    from ..io.atomic import atomic_path

    with atomic_path(path, parameter="manifest") as tmp:
        tmp.write_text(text, encoding="utf-8")
