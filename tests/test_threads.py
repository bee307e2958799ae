"""trainer.threads=0 (auto) picks the threads from the layers' size (nnexp/threads.py): one thread for the small
layers of course-sized models, the available cores for large ones; trainer.threads=N is used as given."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from nnexp.threads import LARGE_LAYER, auto_threads, layer_work


def test_linear_and_conv_layers_count_weights_times_output_positions():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 5))
    work, applications = layer_work(model, torch.zeros(1, 3, 10, 10))
    assert work == 8 * 3 * 3 * 3 * 10 * 10 + 800 * 5 and applications == 2


def test_a_recurrent_layer_counts_each_time_step():
    model = nn.LSTM(4, 6, num_layers=2, batch_first=True)
    work, applications = layer_work(model, torch.zeros(1, 7, 4))
    weights = sum(p.numel() for name, p in model.named_parameters() if name.startswith("weight"))
    assert work == weights * 7 and applications == 2 * 7


def test_counting_changes_neither_the_model_nor_the_random_state():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sample = torch.randn(1, 4)
    rng = torch.get_rng_state()
    layer_work(model, sample)
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model[0]._forward_hooks


def test_small_layers_train_on_one_thread_large_ones_on_every_core():
    small = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))  # the demo's size: 3M per layer
    assert auto_threads(small, torch.zeros(1, 64), batch_size=32, available=8)[0] == 1
    big = nn.Linear(4096, 4096)
    per_layer = 4096 * 4096 * 32
    assert per_layer >= LARGE_LAYER
    threads, why = auto_threads(big, torch.zeros(1, 4096), batch_size=32, available=8)
    assert threads == 8 and "large enough for 8 cores" in why
    assert auto_threads(big, torch.zeros(1, 4096), batch_size=32, available=1)[0] == 1


def test_a_model_that_cannot_run_one_sample_gets_one_thread():
    class Picky(nn.Module):
        def forward(self, x):
            raise RuntimeError("needs two samples")

    assert auto_threads(Picky(), torch.zeros(1, 3), batch_size=32, available=4)[0] == 1


@pytest.mark.parametrize("extra, logged", [
    ([], "1 torch thread (auto: "),
    (["trainer.threads=2"], "2 torch threads (trainer.threads=2), OpenMP wait"),
])
def test_a_run_logs_the_threads_it_trains_with(tmp_path, extra, logged):
    done = subprocess.run([sys.executable, "-m", "nnexp", "train", "dataset=moons", "dataset.n_samples=200",
                           "model.hidden=[4]", "trainer.epochs=1", "trainer.progress=none", *extra,
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert logged in (tmp_path / "run" / "train.log").read_text()
