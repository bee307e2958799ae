"""Preset expectations: the little grammar, one-run claims, and claims across a sweep's jobs."""

from __future__ import annotations

import pytest

from nnexp.checks import check_run, check_sweep, parse, value_at


def summary(model: str, seed: int, val_acc: float, val_loss: float, reg: str = "none") -> dict:
    return {"choices": {"model": model, "regularizer": reg}, "overrides": [f"model={model}", f"trainer.seed={seed}"],
            "seed": seed, "final": {"val/acc": val_acc, "val/loss": val_loss}, "epochs_run": 10}


def test_parse_sides_ops_and_selectors():
    e = parse("final.val/acc[model=perceptron] <= 0.75")
    assert (e.left.path, e.left.select, e.op, e.right.number) == ("final.val/acc", (("model", "perceptron"),), "<=", 0.75)
    assert not e.across_jobs
    assert parse("final.val/loss[regularizer=l2] < final.val/loss[regularizer=none]").across_jobs


@pytest.mark.parametrize("bad", ["final.val/acc", "final.val/acc => 1", "1 < 2", "x[model] < 1", ""])
def test_malformed_expectations_say_what_is_allowed(bad):
    with pytest.raises(ValueError, match="LEFT OP RIGHT|two numbers|key=value"):
        parse(bad)


def test_value_at_reads_nested_paths():
    s = summary("mlp", 0, 0.9, 0.3)
    assert value_at(s, "final.val/acc") == 0.9 and value_at(s, "epochs_run") == 10
    assert value_at(s, "best.val/acc") is None


def test_one_run_claims_apply_only_where_the_selector_matches():
    claims = ["final.val/acc[model=perceptron] <= 0.75", "final.val/acc[model=mlp] >= 0.99", "epochs_run >= 5"]
    assert [(r["expect"], r["pass"]) for r in check_run(claims, summary("perceptron", 0, 0.5, 0.7))] == [
        ("final.val/acc[model=perceptron] <= 0.75", True), ("epochs_run >= 5", True)]
    failed = check_run(claims, summary("mlp", 0, 0.9, 0.2))
    assert [r["pass"] for r in failed] == [False, True] and failed[0]["left"] == 0.9


def test_cross_job_claims_are_left_to_the_sweep():
    assert check_run(["final.val/loss[regularizer=l2] < final.val/loss[regularizer=none]"],
                     summary("mlp", 0, 0.9, 0.2, "l2")) == []


def test_sweep_claim_must_hold_for_every_seed():
    claim = "final.val/loss[regularizer=l2] < final.val/loss[regularizer=none]"
    jobs = [summary("mlp", 0, 0.9, 0.20, "l2"), summary("mlp", 0, 0.9, 0.30, "none"),
            summary("mlp", 1, 0.9, 0.25, "l2"), summary("mlp", 1, 0.9, 0.30, "none")]
    (result,) = check_sweep([claim], jobs)
    assert result["pass"] is True and result["per_seed"] == {"0": True, "1": True}
    jobs.append(summary("mlp", 2, 0.9, 0.40, "l2"))
    jobs.append(summary("mlp", 2, 0.9, 0.30, "none"))
    (result,) = check_sweep([claim], jobs)
    assert result["pass"] is False and result["per_seed"]["2"] is False
    assert result["values"]["2"] == [0.40, 0.30]


def test_sweep_one_run_claims_and_missing_jobs():
    jobs = [summary("perceptron", s, acc, 0.7) for s, acc in ((0, 0.5), (1, 0.8))]
    (result,) = check_sweep(["final.val/acc[model=perceptron] <= 0.75"], jobs)
    assert result["pass"] is False and result["per_seed"] == {"0": True, "1": False}
    assert result["values"] == {"0": [0.5, 0.75], "1": [0.8, 0.75]}  # one job per seed: its numbers shown
    (pooled,) = check_sweep(["final.val/acc <= 0.75"], [*jobs, summary("mlp", 0, 0.6, 0.7)])
    assert pooled["per_seed"]["0"] is True and "0" not in (pooled["values"] or {})  # two jobs: no single number
    (missing,) = check_sweep(["final.val/loss[model=mlp] < final.val/loss[model=perceptron]"], jobs)
    assert missing["pass"] is None  # no mlp job: N/A, not a silent PASS


def test_a_boolean_selector_matches_the_spelling_a_sweep_gives_its_jobs():
    """`-m model.skip=true,false` labels the jobs model.skip=True / False (Hydra): [model.skip=false] finds them."""
    def job(skip: str, loss: float) -> dict:
        return {"choices": {"model": "resnet"}, "overrides": [f"model.skip={skip}", "trainer.seed=0"], "seed": 0,
                "final": {"train/loss": loss}}

    (result,) = check_sweep(["final.train/loss[model.skip=true] < final.train/loss[model.skip=false]"],
                            [job("True", 0.1), job("False", 0.5)])
    assert result["pass"] is True and result["values"] == {"0": [0.1, 0.5]}
    assert check_run(["final.train/loss[model.skip=TRUE] < 1"], job("true", 0.1))[0]["pass"] is True
    (other,) = check_sweep(["final.train/loss[model.skip=yes] < 1"], [job("True", 0.1)])
    assert other["pass"] is None  # only the spellings of one boolean match each other


def test_a_factor_multiplies_a_path_for_orders_of_magnitude_claims():
    claim = "100 * final.val/loss[model=rnn] < final.val/loss[model=lstm]"
    e = parse(claim)
    assert e.across_jobs and e.left.factor == 100 and str(e.left) == "100 * final.val/loss[model=rnn]"
    jobs = [summary("rnn", 0, 0.1, 0.001), summary("lstm", 0, 0.9, 0.2),  # seed 0: 0.1 < 0.2, holds
            summary("rnn", 1, 0.1, 0.01), summary("lstm", 1, 0.9, 0.2)]  # seed 1: 1.0 < 0.2, fails
    (result,) = check_sweep([claim], jobs)
    assert result["per_seed"] == {"0": True, "1": False} and result["pass"] is False
    assert result["values"]["1"] == pytest.approx([1.0, 0.2])
    assert check_run(["2 * final.val/acc > 1"], summary("mlp", 0, 0.6, 0.3))[0]["pass"] is True
    assert check_run(["2 * final.val/acc > 1"], summary("mlp", 0, 0.4, 0.3))[0]["pass"] is False


@pytest.mark.parametrize("bad", ["2 * 3 < final.val/acc", "final.val/acc < 10 * 0.5"])
def test_a_factor_of_a_number_is_refused(bad):
    with pytest.raises(ValueError, match="a factor multiplies a summary.json path"):
        parse(bad)
