"""Fixtures: the committed sample run, and edited copies of it in tmp dirs."""

import json
import shutil
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1]
SAMPLE = NOTEBOOKS.parent / "results" / "sample"
sys.path.insert(0, str(NOTEBOOKS))


class Copy:
    """A copy of the sample run whose files a test may edit."""

    def __init__(self, folder):
        self.folder = folder
        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.cases = self.manifest["cases"]

    def edit_manifest(self, **changes):
        self.manifest.update(changes)
        (self.folder / "manifest.json").write_text(json.dumps(self.manifest))

    def edit_case(self, case, **changes):
        path = self.folder / f"{case}.json"
        result = json.loads(path.read_text())
        result.update(changes)
        path.write_text(json.dumps(result))

    def remove(self, case, *suffixes):
        for suffix in suffixes:
            (self.folder / f"{case}{suffix}").unlink()

    def deadlock(self, case):
        """Marks a case as the harness marks one its watchdog caught."""
        self.edit_case(case, status="deadlock", mib_s=0.0, stall={
            "kind": "deadlock", "after_s": 2.0, "bios_in_pipeline": 1, "pools": [],
            "detail": "no I/O completed for 2.0s: shared pool: 1 queued behind 1 busy worker(s)"})


@pytest.fixture
def sample_dir():
    return SAMPLE


@pytest.fixture
def copy(tmp_path):
    return Copy(Path(shutil.copytree(SAMPLE, tmp_path / "run")))

