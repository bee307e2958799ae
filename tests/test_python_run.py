"""run() without the command line: a config from Hydra's compose API, no hydra.main, the same run."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from nnexp import config
from nnexp.context import RunContext
from nnexp.record import Status
from nnexp.run import run

OVERRIDES = ["dataset=moons", "model.hidden=[16]", "trainer.epochs=4", "trainer.progress=none",
             "trainer.threads=1", 'expect=["epochs_run == 4"]']
# what differs between two runs of one config: where they ran, and how long they took
WHERE_AND_WHEN = ("run_dir", "wall_seconds", "seconds_per_epoch")


def _same_run(a: Path, b: Path) -> None:
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert {k: v for k, v in sa.items() if k not in WHERE_AND_WHEN} == \
        {k: v for k, v in sb.items() if k not in WHERE_AND_WHEN}
    metrics = [[row.split(",")[:6] for row in (d / "metrics.csv").read_text().splitlines()] for d in (a, b)]
    assert metrics[0] == metrics[1]  # epoch, losses, accuracies, lr: everything but the seconds


def test_run_from_python_is_the_run_the_cli_makes(run_cli, tmp_path, monkeypatch):
    code, _, err = run_cli("train", *OVERRIDES, f"hydra.run.dir={tmp_path / 'cli'}")
    assert code == 0, err

    config.register()
    with initialize_config_dir(config_dir=str(config.config_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=OVERRIDES, return_hydra_config=True)
    ctx = RunContext.from_hydra(cfg.hydra, run_dir=tmp_path / "python")
    with open_dict(cfg):
        del cfg["hydra"]


    def no_hydra_main(*args, **kwargs):
        raise AssertionError("run() asked for HydraConfig: it must work without hydra.main")

    for name in ("get", "initialized", "instance"):
        monkeypatch.setattr(HydraConfig, name, no_hydra_main)
    summary = run(cfg, ctx)
    monkeypatch.undo()

    assert summary.status is Status.COMPLETED and summary.checks[0]["pass"] is True
    assert summary.choices["model"] == "mlp" and summary.overrides == OVERRIDES
    _same_run(tmp_path / "cli", tmp_path / "python")
    assert list((tmp_path / "python").glob("events.out.tfevents.*"))
    assert (tmp_path / "python" / "checkpoints" / "last.pt").is_file()
