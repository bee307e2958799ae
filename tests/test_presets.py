"""Experiment presets: each runs from `nnexp train experiment=NAME` and its claims PASS for seeds 0, 1, 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from nnexp.checks import check_sweep

PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def _claims(summaries: list[dict]) -> list[dict]:
    expectations = list(dict.fromkeys(e for s in summaries for e in s.get("expect", [])))
    assert expectations, "a preset declares what it expects"
    return check_sweep(expectations, summaries)


def _summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("outputs/multirun/*/*/*/summary.json"))]


def test_every_preset_names_its_command_and_claim():
    for name in PRESETS:
        text = (REPO / "conf" / "experiment" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n# nnexp train experiment=" + name), name
        assert "Claim" in text or name == "xor_mlp", name


@pytest.mark.parametrize(("args", "jobs"), [
    (["experiment=xor"], 9),
    (["-m", "experiment=overfitting", "trainer.seed=0,1,2"], 3),
    (["experiment=optimizers"], 9),
    pytest.param(["experiment=cnn_vs_mlp"], 6, marks=pytest.mark.slow),
])
def test_preset_claims_hold_for_seeds_0_1_2(run_cli, tmp_path, args, jobs):
    code, out, err = run_cli("train", *args, "trainer.progress=none")
    assert code == 0, err
    summaries = _summaries(tmp_path)
    assert len(summaries) == jobs and all(s["status"] != "failed" for s in summaries)
    assert {s["seed"] for s in summaries} == {0, 1, 2}
    for claim in _claims(summaries):
        assert claim["pass"] is True, claim
        assert set(claim["per_seed"]) == {"0", "1", "2"}, claim
