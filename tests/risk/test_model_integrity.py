"""Model artifacts are checked against their SHA-256 manifest before use; a tampered one is refused and counted."""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from models.risk.artifact import ArtifactIntegrityError, load_model_set, verify_manifest, write_manifest
from streams import metrics
from streams.risk_scoring import RiskScorer

SHIPPED = next((Path(__file__).resolve().parents[2] / "models" / "artifacts" / "risk").glob("risk-*"))


class Payload:
    """A pickle that runs code when loaded (what a tampered model.joblib can carry)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_the_shipped_artifact_matches_its_manifest():
    assert len(verify_manifest(SHIPPED)) == 64
    lines = (SHIPPED / "MANIFEST.sha256").read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["metadata.json", "model.joblib", "split.json"]


@pytest.mark.parametrize("damage", ["model_byte", "metadata_edit", "manifest_missing", "manifest_edit", "pickle"])
def test_a_tampered_artifact_is_refused_before_anything_is_unpickled(tmp_path, damage):
    art = tmp_path / "a"
    shutil.copytree(SHIPPED, art)
    marker = tmp_path / "marker"
    if damage == "model_byte":
        data = bytearray((art / "model.joblib").read_bytes())
        data[len(data) // 2] ^= 0x01
        (art / "model.joblib").write_bytes(bytes(data))
        expected = "model.joblib does not match its sha256"
    elif damage == "metadata_edit":
        text = (art / "metadata.json").read_text()
        (art / "metadata.json").write_text(text.replace('"horizon_days": 30.0', '"horizon_days": 3.0', 1))
        assert (art / "metadata.json").read_text() != text
        expected = "metadata.json does not match"
    elif damage == "manifest_missing":
        (art / "MANIFEST.sha256").unlink()
        expected = "without a manifest"
    elif damage == "manifest_edit":
        (art / "MANIFEST.sha256").write_text((art / "MANIFEST.sha256").read_text().replace("  split.json", "  other"))
        expected = "line 3"
    else:
        (art / "model.joblib").write_bytes(pickle.dumps(Payload(marker)))
        expected = "model.joblib does not match"
    with pytest.raises(ArtifactIntegrityError, match=expected):
        load_model_set(art)
    assert not marker.exists()
    if damage == "pickle":  # the payload is real: loaded without the check, it runs
        pickle.loads((art / "model.joblib").read_bytes())
        assert marker.read_text() == "pwned"


def test_the_worker_refuses_a_tampered_version_logs_counts_and_keeps_the_model_in_force(tmp_path, caplog):
    root = tmp_path / "models"
    shutil.copytree(SHIPPED, root / "v1")
    ingest = SimpleNamespace(changed=set(), urgent=set(), local_vins=lambda: set())
    scorer = RiskScorer(SimpleNamespace(ingest=ingest), root, 60.0, 1.0, 1.0, 100, {})
    assert scorer.maybe_reload()
    version = scorer.models.version
    shutil.copytree(root / "v1", root / "v2")                        # a newer version, then tampered with
    data = bytearray((root / "v2" / "model.joblib").read_bytes())
    data[-100] ^= 0xFF
    (root / "v2" / "model.joblib").write_bytes(bytes(data))
    before = metrics.RISK_MODEL_REJECTED._value.get()
    with caplog.at_level(logging.ERROR, logger="streams.risk_scoring"):
        assert not scorer.maybe_reload()
    assert metrics.RISK_MODEL_REJECTED._value.get() == before + 1
    assert scorer.models.version == version                          # the running model stays in force
    assert "v2" in caplog.text and "does not match its sha256" in caplog.text and "keeping " + version in caplog.text
    assert not scorer.maybe_reload()                                 # refused once, not retried every check
    assert metrics.RISK_MODEL_REJECTED._value.get() == before + 1
    shutil.copytree(root / "v1", root / "v3")                        # a re-published, intact version is taken
    meta = (root / "v3" / "metadata.json").read_text().replace(version, version + "-v3")
    (root / "v3" / "metadata.json").write_text(meta)
    write_manifest(root / "v3")
    assert scorer.maybe_reload() and scorer.models.version == version + "-v3"
