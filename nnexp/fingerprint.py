"""What makes two runs the same run: the resolved config, less the keys that only change how it looks.

Free of torch and Hydra: ``nnexp report`` reads it, and so do the sweep and
resume rules (a sweep run again skips a job whose folder holds a finished run
with the same fingerprint; ``trainer.resume=auto`` continues a run whose config
is this one up to the epoch budget).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# trainer keys that change how a run is shown or logged, not what it learns: they name no
# hyperparameter (HPARAMS tab) and no configuration of a sweep (nnexp report)
DISPLAY_KEYS = frozenset({"trainer.progress", "trainer.checkpoints", "trainer.checkpoint_every_s",
                          "trainer.threads", "trainer.eval_batch_size",
                          "trainer.pictures_every", "trainer.histograms_every", "trainer.confusion_matrix",
                          "trainer.resume", "trainer.resume_finished", "trainer.resume_config",
                          "trainer.tensorboard", "trainer.log_every_n_steps", "trainer.detect_anomaly"})
# differences that do not make another run to continue: display keys, and the epoch budget (a run may grow)
RESUMABLE_CHANGES = DISPLAY_KEYS | {"trainer.epochs", "agent.total_steps"}  # an agent's step budget too
# keys that came after runs were made without them, at the value that changes nothing: with it or without the key,
# the same run (so a run from before them keeps its fingerprint, a resume continues it, a sweep run again skips it)
NEUTRAL = {"trainer.limit_batches": 0, "trainer.overfit_batches": 0, "agent": None}


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"epochs": 3}}`` -> ``{"trainer.epochs": 3}``; a NEUTRAL key at its neutral value left out."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out
    key = prefix[:-1]
    return {} if key in NEUTRAL and node == NEUTRAL[key] and type(node) is type(NEUTRAL[key]) else {key: node}


def config_hash(config: dict[str, Any]) -> str:
    """A fingerprint of what a run computes (stored in summary.json as ``config_hash``)."""
    kept = {k: v for k, v in flat(config).items() if k not in DISPLAY_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two resolved configs describe the same training run, up to how it looks and how long it trains?"""
    fa, fb = flat(a), flat(b)
    return ({k: v for k, v in fa.items() if k not in RESUMABLE_CHANGES}
            == {k: v for k, v in fb.items() if k not in RESUMABLE_CHANGES})
