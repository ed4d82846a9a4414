"""The manifest: atomic JSON, and what counts as complete (status, options, an intact output)."""
from __future__ import annotations

import hashlib
import json

import pytest

from dualsr_core.batch.manifest import Manifest
from dualsr_core.errors import InputError

OPTIONS = {"method": "coarse", "scale": 2, "weights": "ab" * 32, "precision": "fp32"}


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_complete_scene_needs_the_same_options_and_an_intact_output(tmp_path):
    output = tmp_path / "a_x2.tif"
    output.write_bytes(b"pixels")
    manifest = Manifest(tmp_path / "manifest.json", OPTIONS)
    manifest.set(str(output), {"input": "a.tif", "status": "done", "seconds": 1.5, "worker": "w", "device": "cpu",
                               "sha256": sha256(output)})
    manifest.set(str(tmp_path / "b_x2.tif"), {"input": "b.tif", "status": "failed", "error": "not a raster"})
    manifest.save()
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format"] == "dualsr-batch-manifest/1" and data["options"] == OPTIONS
    first = data["scenes"][0]
    assert list(first)[:8] == ["input", "output", "status", "seconds", "worker", "device", "sha256", "error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_x2.tif", "manifest.json"]  # no temporary file left

    again = Manifest(tmp_path / "manifest.json", OPTIONS)
    assert again.complete(str(output), sha256)["seconds"] == 1.5
    assert again.complete(str(tmp_path / "b_x2.tif"), sha256) is None  # failed
    assert Manifest(tmp_path / "manifest.json", {**OPTIONS, "precision": "bf16"}).complete(str(output), sha256) is None
    output.write_bytes(b"pixelz")  # changed since: not intact
    assert again.complete(str(output), sha256) is None
    output.unlink()
    assert again.complete(str(output), sha256) is None


def test_records_of_scenes_not_in_this_run_are_kept(tmp_path):
    first = Manifest(tmp_path / "manifest.json", OPTIONS)
    first.set("/x/a_x2.tif", {"input": "a.tif", "status": "done", "sha256": "0" * 64})
    first.save()
    second = Manifest(tmp_path / "manifest.json", OPTIONS)
    second.set("/x/b_x2.tif", {"input": "b.tif", "status": "done", "sha256": "1" * 64})
    second.save()
    outputs = [r["output"] for r in json.loads((tmp_path / "manifest.json").read_text())["scenes"]]
    assert outputs == ["/x/a_x2.tif", "/x/b_x2.tif"]


def test_a_foreign_manifest_is_refused_with_a_message(tmp_path):
    (tmp_path / "manifest.json").write_text('{"something": "else"}')
    with pytest.raises(InputError, match="is not a DualSR batch manifest"):
        Manifest(tmp_path / "manifest.json", OPTIONS)


def test_an_earlier_failure_of_a_scene_no_longer_in_the_run_is_dropped(tmp_path):
    """A broken input failed, the user removed it and ran again: the manifest describes the run as it is now."""
    done = tmp_path / "a_x2.tif"
    done.write_bytes(b"pixels")
    first = Manifest(tmp_path / "manifest.json", OPTIONS)
    first.set(str(done), {"input": "a.tif", "status": "done", "sha256": sha256(done)})
    first.set(str(tmp_path / "broken_x2.tif"), {"input": "broken.tif", "status": "failed", "error": "not a raster"})
    first.save()
    second = Manifest(tmp_path / "manifest.json", OPTIONS)
    second.set(str(tmp_path / "b_x2.tif"), {"input": "b.tif", "status": "done", "sha256": "cd" * 32})
    second.save()
    scenes = json.loads((tmp_path / "manifest.json").read_text())["scenes"]
    assert sorted((s["input"], s["status"]) for s in scenes) == [("a.tif", "done"), ("b.tif", "done")]
