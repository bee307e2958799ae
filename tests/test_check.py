"""`nnexp check`: every scratch component passes against torch, and a broken one is caught."""

from __future__ import annotations

import sys
import time

import torch

from nnexp import check
from nnexp.scratch import backprop, lstm, optim, perceptron, rnn


def test_check_passes_and_prints_a_row_per_comparison(capsys):
    started = time.perf_counter()
    assert check.main([]) == 0
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    for component in ("backprop: mse", "backprop: cross_entropy", "ScratchMLPFunction", "SGD per sample",
                      "LSTM standard: outputs", "LSTM standard: grads", "LSTM seed form", "attention: causal",
                      "multi-head: self, bool mask", "SGD Nesterov", "Adam", "perceptron step"):
        assert component in out, component
    rows = check.run_checks()
    assert out.count("PASS") == len(rows) >= 20 and "FAIL" not in out
    assert f"{len(rows)} of {len(rows)} checks passed" in out
    assert elapsed < 20


def test_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check.run_checks()
    assert torch.equal(torch.rand(3), expected)


def _wrong_tanh(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.tanh(a)
    return z, 1.0 - z  # should be 1 - z^2


def _broken_failures(capsys) -> list[str]:  # noqa: ANN001
    assert check.main([]) == 1
    out = capsys.readouterr().out
    return [line for line in out.splitlines() if "FAIL" in line]


def test_a_wrong_derivative_fails_the_backprop_rows(monkeypatch, capsys):
    monkeypatch.setitem(backprop.ACTIVATIONS, "tanh", _wrong_tanh)
    failed = _broken_failures(capsys)
    assert any("backprop: mse" in line for line in failed)
    assert any("ScratchMLPFunction" in line for line in failed)
    assert not any("Adam" in line or "LSTM" in line for line in failed)  # the rest still passes


def test_a_wrong_adam_bias_correction_fails_only_adam(monkeypatch, capsys):
    def step_without_bias_correction(self, closure=None):  # noqa: ANN001, ANN202
        with torch.no_grad():
            for group in self.param_groups:
                for W in group["params"]:
                    state = self.state[W]
                    m = state.setdefault("exp_avg", torch.zeros_like(W))
                    v = state.setdefault("exp_avg_sq", torch.zeros_like(W))
                    m.mul_(0.9).add_(0.1 * W.grad)
                    v.mul_(0.999).add_(0.001 * W.grad ** 2)
                    W.sub_(group["lr"] * m / (v.sqrt() + group["eps"]))

    monkeypatch.setattr(optim.Adam, "step", step_without_bias_correction)
    failed = _broken_failures(capsys)
    assert failed and all("Adam" in line for line in failed)


def test_the_seed_form_with_torch_gate_order_fails(monkeypatch, capsys):
    real_cell = lstm.lstm_cell

    def swapped(x, h, c, w_x, w_h, b, form="standard"):  # noqa: ANN001, ANN202
        if form == "seed":  # read the gates in torch's order (i, f, g, o) instead of the seed's (i, j, f, o)
            i, f, g, o = w_x.chunk(4)
            w_x = torch.cat([i, g, f, o])
        return real_cell(x, h, c, w_x, w_h, b, form)

    monkeypatch.setattr(lstm, "lstm_cell", swapped)
    failed = _broken_failures(capsys)
    assert len(failed) >= 1 and all("LSTM seed form" in line for line in failed)


def test_an_rnn_cell_without_its_recurrent_term_fails(monkeypatch, capsys):
    def no_memory(x, h, w_x, w_h, b):  # noqa: ANN001, ANN202 - forgets h_{t-1}: a feed-forward layer per step
        return torch.tanh(x @ w_x.T + b)

    monkeypatch.setattr(rnn, "rnn_cell", no_memory)
    failed = _broken_failures(capsys)
    assert len(failed) >= 1 and all("RNN (Elman)" in line for line in failed)


def test_a_crashing_component_is_a_failed_row_with_its_error(monkeypatch, capsys):
    def crash(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("perceptron exploded")

    monkeypatch.setattr(perceptron, "perceptron_step", crash)
    failed = _broken_failures(capsys)
    assert any("perceptron" in line and "RuntimeError: perceptron exploded" in line for line in failed)


def test_help_and_bad_arguments(capsys):
    assert check.main(["--help"]) == 0
    assert "usage: nnexp check" in capsys.readouterr().out
    assert check.main(["--fast"]) == 2
    assert "unexpected arguments: --fast" in capsys.readouterr().err


def test_a_missing_module_fails_its_rows(monkeypatch, capsys):
    import nnexp.scratch

    monkeypatch.setitem(sys.modules, "nnexp.scratch.attention", None)  # importing it raises ImportError
    monkeypatch.delattr(nnexp.scratch, "attention", raising=False)
    failed = _broken_failures(capsys)
    assert any("attention" in line for line in failed) and any("multi-head" in line for line in failed)


def test_check_reads_whole_at_80_columns_and_its_caption_is_no_error(monkeypatch, capsys, terminal):
    """At 80 columns rich cut the references (`F.scaled_dot_prod…`); a passing check's caption began with
    `error:`. Now each reference sits under its component, every number whole; a failure still says FAIL."""
    from conftest import box_tables, screen

    rows = check.run_checks()
    monkeypatch.setattr(check, "run_checks", lambda: rows)
    assert check.main([]) == 0
    piped = screen(capsys.readouterr().out)  # 200 columns: the table as before
    (wide,) = box_tables(piped, key=2)
    assert wide[0] == ["component", "reference", "max abs error", "tolerance", "result"]
    terminal(80)
    assert check.main([]) == 0
    lines = screen(capsys.readouterr().out)
    assert max(len(line) for line in lines) <= 80
    (narrow,) = box_tables(lines)
    assert narrow[0] == ["component (vs reference)", "max abs error", "tolerance", "result"]
    assert [r[1:] for r in narrow[1:]] == [r[2:] for r in wide[1:]]
    assert [r[0] for r in narrow[1:]] == [f"{c} vs {ref}" for c, ref, *_ in wide[1:]]
    assert "F.scaled_dot_product_attention" in " ".join(lines)
    caption = " ".join(lines[lines.index(next(ln for ln in lines if ln.startswith("└"))) + 1:-1])
    assert caption == "max abs error: the largest difference from torch over every output and gradient compared"
    assert lines[-1] == f"{len(rows)} of {len(rows)} checks passed"

    rows[0].error = 1.0  # a failing row: red FAIL in the table, its line, the count
    assert check.main([]) == 1
    out = screen(capsys.readouterr().out)
    assert f"FAIL {rows[0].component}: error 1.000e+00 > tolerance 1e-10" in out
    assert out[-1] == f"{len(rows) - 1} of {len(rows)} checks passed, 1 failed"
