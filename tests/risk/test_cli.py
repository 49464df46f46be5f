"""``fleet train`` and ``fleet evaluate`` hand their arguments to the risk CLIs unchanged."""

from __future__ import annotations

import pytest

from streams.cli import build_parser


@pytest.mark.parametrize("command,module", [("train", "models.risk.train"), ("evaluate", "models.risk.evaluate")])
def test_fleet_train_and_evaluate_forward_their_arguments(command, module, monkeypatch):
    import importlib

    seen = []
    monkeypatch.setattr(importlib.import_module(module), "main", lambda argv: seen.append(argv))
    argv = ["--telemetry", "T", "--maintenance", "M.csv", "--out", "O", "--horizon-days", "20"]
    args = build_parser().parse_args([command, *argv])
    args.func(args)
    assert seen == [argv]


def test_train_needs_only_telemetry_maintenance_and_out(tmp_path, trained):
    from models.risk import train
    from models.risk.artifact import load_metadata

    data = trained.data
    out = train.main(["--telemetry", str(data / "telemetry"), "--maintenance", str(data / "maintenance.csv"),
                      "--out", str(tmp_path / "a"), "--horizon-days", "14", "--workers", "1",
                      "--cache-dir", str(trained.cache), "--params", '{"max_iter": 5}'])
    meta = load_metadata(out)
    assert meta["data"]["vehicles"] == 56                    # fleet.csv and weather found next to the log
    assert meta["data"]["dataset_signature"]
