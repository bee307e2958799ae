"""trainer.strategy=ddp: two CPU processes (gloo) under torchrun train what one process trains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from conftest import read_summary

# no dropout (each rank would draw its own masks); 375 training samples in batches of 32: the last batch
# of 23 splits 12/11 over the two ranks, which the loss weighting must get right
RUN = ["dataset=moons", "model.hidden=[16,16]", "regularizer=none", "trainer.epochs=4", "trainer.batch_size=32",
       "trainer.progress=none"]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_two_gloo_processes_match_one_process_and_write_one_run_dir(tmp_path):
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "nnexp", "train", "trainer.strategy=ddp", *RUN], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").glob("*/*")  # rank 1 wrote no folder of its own
    single = tmp_path / "single"
    proc = subprocess.run([sys.executable, "-m", "nnexp", "train", *RUN, f"hydra.run.dir={single}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    a, b = _weights(run_dir), _weights(single)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5)
    # validation metrics are reduced over the ranks: the same numbers as one process
    sa, sb = read_summary(run_dir), read_summary(single)
    for key in ("train/loss", "val/loss", "val/acc"):
        assert abs(sa["final"][key] - sb["final"][key]) < 1e-5, key
    assert ddp.stdout.count("nnexp run: completed") == 1  # only rank 0 prints


def test_ddp_outside_torchrun_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("train", "trainer.strategy=ddp", "trainer.progress=none")
    assert code == 2
    assert err.strip() == ("nnexp: error: trainer.strategy=ddp needs the processes torchrun starts: "
                           "torchrun --nproc_per_node=N -m nnexp train trainer.strategy=ddp ...")
    assert not (tmp_path / "outputs").exists()
