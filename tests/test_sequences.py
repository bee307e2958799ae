"""Sequence datasets, the LSTM and Transformer models, and attention from the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import read_summary

from nnexp.data import sequences
from nnexp.models.lstm import LSTM
from nnexp.models.transformer import Transformer
from nnexp.scratch.attention import MultiHeadAttention, scaled_dot_product_attention


def test_adding_target_is_the_sum_of_the_two_marked_values():
    data = sequences.adding(n_samples=50, length=20, val_fraction=0.2, seed=3)
    x, y = data.train.x, data.train.y
    assert x.shape == (40, 20, 2) and y.shape == (40, 1) and data.task == "regression"
    assert torch.all(x[..., 1].sum(dim=1) == 2)  # exactly two markers
    assert torch.all(x[:, :10, 1].sum(dim=1) == 1)  # one in each half
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(dim=1, keepdim=True), y)
    assert data.tolerance == 0.04  # Hochreiter & Schmidhuber's criterion: gives the task an accuracy


def test_adding_has_an_accuracy_and_always_answering_the_mean_scores_low(run_cli, tmp_path):
    code, _, err = run_cli("train", "model=lstm", "dataset=adding", "dataset.n_samples=200", "trainer.epochs=2",
                           "trainer.progress=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err
    s = read_summary(tmp_path / "run")
    assert 0.0 <= s["final"]["val/acc"] <= 1.0
    data = sequences.adding(n_samples=4000, seed=0)
    mean_answer = ((data.val.y - 1.0).abs() < data.tolerance).float().mean().item()
    assert 0.03 < mean_answer < 0.1  # the docstring's "about 6%"


def test_copy_writes_the_symbols_back_after_the_delay():
    data = sequences.copy(n_samples=30, length=4, delay=3, n_symbols=5, seed=1)
    x, y = data.train.x, data.train.y
    assert x.dtype == torch.int64 and x.shape[1] == 2 * 4 + 3 and data.per_step
    assert torch.equal(y[:, 4 + 3:], x[:, :4])  # the answer is the remembered symbols
    assert torch.all(y[:, : 4 + 3] == sequences.BLANK) and torch.all(x[:, 4 + 3] == sequences.GO)
    assert data.vocab_size == data.num_classes == 7


def test_parity_labels_count_ones():
    data = sequences.parity(n_samples=64, length=9, seed=2)
    assert torch.equal(data.train.y, data.train.x.sum(dim=1) % 2)
    assert data.vocab_size == 2 and not data.per_step


def test_text_targets_are_the_next_character(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20)
    data = sequences.text(str(path), seq_len=16, val_fraction=0.2, seed=0)
    assert data.next_token and data.per_step and data.vocab_size == len(set(path.read_text()))
    x, y = data.train.x, data.train.y
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one


def test_same_seed_same_sequences():
    a, b = sequences.adding(n_samples=20, seed=5), sequences.adding(n_samples=20, seed=5)
    assert torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.train.x, sequences.adding(n_samples=20, seed=6).train.x)


@pytest.mark.parametrize("model_cls", [LSTM, Transformer])
@pytest.mark.parametrize(("input_shape", "vocab", "per_step", "out_shape"), [
    ((12, 2), None, False, (3, 4)),  # features -> one prediction
    ((12,), 7, False, (3, 4)),  # tokens -> one prediction
    ((12,), 7, True, (3, 12, 4)),  # tokens -> a prediction per step
])
def test_sequence_model_heads(model_cls, input_shape, vocab, per_step, out_shape):
    torch.manual_seed(0)
    model = model_cls(input_shape=input_shape, num_outputs=4, vocab_size=vocab, per_step=per_step)
    x = torch.randint(0, 7, (3, *input_shape)) if vocab else torch.randn(3, *input_shape)
    out = model(x)
    assert out.shape == out_shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("model_cls", [LSTM, Transformer])
def test_causal_models_do_not_look_ahead(model_cls):
    """Changing token t+1.. must not change the prediction at t (next-token training would cheat)."""
    torch.manual_seed(0)
    model = model_cls(input_shape=(10,), num_outputs=5, vocab_size=5, per_step=True, causal=True).eval()
    x = torch.randint(0, 5, (2, 10))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 5
    assert torch.allclose(model(x)[:, :6], model(y)[:, :6], atol=1e-6)
    assert not torch.allclose(model(x)[:, 6:], model(y)[:, 6:])


def test_transformer_without_causal_mask_does_look_ahead():
    torch.manual_seed(0)
    model = Transformer(input_shape=(10,), num_outputs=5, vocab_size=5, per_step=True).eval()
    x = torch.randint(0, 5, (2, 10))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 5
    assert not torch.allclose(model(x)[:, :6], model(y)[:, :6])


def test_transformer_keeps_attention_maps():
    model = Transformer(input_shape=(8, 2), num_outputs=1, n_heads=2, n_layers=3)
    model(torch.randn(4, 8, 2))
    assert len(model.attention) == 3 and model.attention[0].shape == (4, 2, 8, 8)
    assert torch.allclose(model.attention[0].sum(-1), torch.ones(4, 2, 8))


@pytest.mark.parametrize("causal", [False, True])
def test_attention_formula_equals_torch(causal):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    ours, weights = scaled_dot_product_attention(q, k, v, causal=causal)
    assert (ours - F.scaled_dot_product_attention(q, k, v, is_causal=causal)).abs().max() < 1e-12
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 6, dtype=torch.float64))


def test_attention_masks_equal_torch():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    allowed = torch.rand(6, 6, generator=g) > 0.4
    allowed[:, 0] = True  # every query keeps one key
    additive = torch.randn(6, 6, generator=g, dtype=torch.float64)
    for mask in (allowed, additive):
        ours, _ = scaled_dot_product_attention(q, k, v, mask=mask)
        assert (ours - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max() < 1e-12


def test_multi_head_attention_equals_torch_with_mapped_weights():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    ours = MultiHeadAttention.from_torch(mha)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    ref, ref_w = mha(x, x, x, average_attn_weights=False)
    out, w = ours(x)
    assert (out - ref).abs().max() < 1e-12 and (w - ref_w).abs().max() < 1e-12
    ref_c, _ = mha(x, x, x, attn_mask=~torch.ones(5, 5, dtype=torch.bool).tril())  # torch: True = blocked
    out_c, _ = ours(x, causal=True)
    assert (out_c - ref_c).abs().max() < 1e-12
    g_ref, = torch.autograd.grad(ref.sum(), x)
    g_ours, = torch.autograd.grad(out.sum(), x)
    assert (g_ref - g_ours).abs().max() < 1e-12


@pytest.mark.parametrize("args", [
    ["model=lstm", "dataset=adding"],
    ["model=transformer", "dataset=adding"],
    ["model=lstm", "dataset=parity"],
    ["model=transformer", "dataset=copy"],
    ["model=rnn", "dataset=adding"],
    ["model=rnn", "dataset=parity"],
    ["model=rnn", "model.cell=scratch", "dataset=copy", "model.num_layers=2", "regularizer.dropout=0.2"],
])
def test_sequence_runs_from_the_cli(run_cli, tmp_path, args):
    code, _, err = run_cli("train", *args, "trainer.epochs=2", "trainer.progress=none",
                           "dataset.n_samples=200", f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    assert np.isfinite(read_summary(tmp_path / "r")["final"]["val/loss"])


def test_transformer_on_a_text_file(run_cli, tmp_path):
    path = tmp_path / "book.txt"
    text = "It was the best of times, it was the worst of times. " * 40
    path.write_text(text)
    code, _, err = run_cli("train", "model=transformer", "dataset=text", f"dataset.path={path}",
                           "dataset.seq_len=32", "trainer.epochs=2", "trainer.progress=none",
                           f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err
    s = read_summary(tmp_path / "r")
    assert s["loss"] == "cross_entropy"
    # two epochs already predict the next character better than a uniform guess over the characters
    assert s["final"]["val/loss"] < 0.9 * math.log(len(set(text)))


@pytest.mark.parametrize(("args", "expected"), [
    (["model=mlp", "dataset=parity"], "model=mlp cannot handle token sequences"),
    (["model=lstm", "dataset=digits"], "lstm needs sequences"),
    (["model=lstm", "model.bidirectional=true", "dataset=text", "dataset.path=README.md"], "bidirectional=true"),
    (["model=transformer", "dataset=text"], "dataset.path must be set (it is ??? in the config)"),
    (["model=transformer", "dataset=text", "dataset.path=missing.txt"], "dataset.path=missing.txt: no such file"),
    (["model=transformer", "model.n_heads=3", "dataset=adding"], "divisible by n_heads=3"),
    (["model=lstm", "model.cell=gru", "dataset=adding"], "model.cell='gru' is out of range"),
    (["model=lstm", "model.hidden_size=0", "dataset=adding"], "model.hidden_size=0 is out of range"),
    (["dataset=copy", "model=lstm", "dataset.delay=-1"], "dataset.delay=-1 is out of range"),
    (["model=rnn", "dataset=digits"], "rnn needs sequences"),
    (["model=rnn", "model.cell=seed", "dataset=adding"], "model.cell='seed' is out of range"),
    (["model=rnn", "model.bidirectional=true", "dataset=text", "dataset.path=README.md"], "bidirectional=true"),
])
def test_bad_sequence_setups_exit_2(run_cli, tmp_path, args, expected):
    (tmp_path / "README.md").write_text("some text to read " * 50)
    code, _, err = run_cli("train", *args, "trainer.progress=none")
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) <= 3
