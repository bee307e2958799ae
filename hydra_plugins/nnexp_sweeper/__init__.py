"""nnexp's default sweeper: Hydra's basic sweeper, composing each job's config once instead of twice.

Hydra's basic sweeper composes every job of a batch to check the batch before launching it
(``Sweeper.validate_batch_is_legal``: a bad override fails before any job runs), then the
launcher composes each job again to run it. For short jobs the second composition is a
large share of the sweep's overhead (benchmarks B5). This sweeper hands the launcher the
config the check composed, once per job, when the launcher composes in this process (the
basic launcher); launchers that compose in their workers (joblib, submitit) compose there
as before: what travels to them is Hydra's own loader, never the held configs.

A Hydra plugin has to live in the ``hydra_plugins`` namespace package; the config that
selects it is ``conf/hydra/sweeper/nnexp.yaml`` (the default of ``nnexp train``). Hydra's
plugin scan runs this module outside ``sys.modules``: no dataclass here (it looks its module up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ComposeOnce:
    """A config loader that gives each composition it already made back once, to the next identical request."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.held: dict[tuple[int, tuple[str, ...]], DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        held = self.held.pop(key, None)
        if held is not None:
            return held
        config = self.loader.load_sweep_config(master_config, sweep_overrides)
        return config

    def check(self, master_config: DictConfig, batch: Sequence[Sequence[str]]) -> None:
        """Compose every job of ``batch`` (a bad override raises here, before any job runs) and hold each."""
        self.held.clear()  # held configs of a batch never launched (an error, or a sweeper that stopped)
        for overrides in batch:
            self.held[(id(master_config), tuple(overrides))] = self.loader.load_sweep_config(master_config,
                                                                                              list(overrides))

    def __getattr__(self, name: str) -> Any:  # everything else is the loader's own
        return getattr(self.loader, name)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a launcher's workers: the loader alone (they compose their own job's config)."""
        return {"loader": self.loader, "held": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class NnexpSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.compose_once = ComposeOnce(hydra_context.config_loader)
        super().setup(hydra_context=HydraContext(config_loader=self.compose_once, callbacks=hydra_context.callbacks),
                      task_function=task_function, config=config)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.config is not None
        self.compose_once.check(self.config, batch)
