"""What a composed config can be refused for before torch is imported: one ConfigError line, exit 2, at once.

In this order:

1. keys that nothing reads: the schema's keys (``trainer``, ``regularizer``, the top level; nnexp/config.py)
   and, for a component (``dataset``, ``model``, ``optimizer``, ``scheduler``, early stopping), the options its
   ``_target_`` takes. Hydra refuses an unknown key given without ``+``; one added with ``+`` (or ``++``) would
   be read by nobody, so it is refused here. A ``+group/option`` adds a config, not a key: it leaves no key.
2. the rule table (``config.check_ranges``: mandatory keys, run-level keys, torch's optimizer and scheduler
   options);
3. each component's own options, with the function its constructor calls (nnexp/options/), so that one
   function is the only place each option is checked.

A component nnexp does not ship (a user's own model, torch's optimizers and schedulers) is not imported here:
nnexp/build.py checks its keys against its signature when it is built, and it checks its own options.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nnexp import config, options, suggest
from nnexp.errors import ConfigError, OptionError

# the components, in the order nnexp/build.py builds them
COMPONENTS = ("regularizer.early_stopping", "dataset", "model", "optimizer", "scheduler", "agent")
# keys of a component's node that Hydra's instantiate reads itself
INSTANTIATE_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
# the groups whose keys the schema gives
SCHEMA = {"trainer": config.TrainerConf, "regularizer": config.RegularizerConf}
# what nnexp itself passes a component when it builds it (nnexp/build.py): never a key of its config
RUNTIME = {"model": ("input_shape", "num_outputs", "vocab_size", "per_step"), "optimizer": ("params",),
           "scheduler": ("optimizer",), "agent": ("networks", "optimizer", "spaces", "device", "seed")}


# what an agent's run (agent=..., nnexp/rl/) never reads: given on the command line, refused rather than ignored
NOT_FOR_AGENTS = ("dataset", "scheduler", "regularizer.early_stopping", "regularizer.l1", "loss", "trainer.epochs",
                  "trainer.batch_size", "trainer.eval_batch_size", "trainer.precision", "trainer.channels_last",
                  "trainer.grad_clip", "trainer.pictures_every", "trainer.histograms_every",
                  "trainer.confusion_matrix", "trainer.log_every_n_steps", "trainer.limit_batches",
                  "trainer.overfit_batches", "trainer.detect_anomaly", "trainer.checkpoint_every_s",
                  "trainer.compile", "trainer.strategy")
AGENT_INSTEAD = {"dataset": "agent.env", "trainer.epochs": "agent.total_steps", "trainer.batch_size": "agent.batch_size",
                 "trainer.grad_clip": "agent.max_grad_norm", "regularizer.early_stopping": "agent.stop_after",
                 "trainer.checkpoint_every_s": "a checkpoint every round, agent.eval_every"}


def check(cfg: DictConfig, choices: Mapping[str, str] | None = None, overrides: Iterable[str] = ()) -> None:
    """Raise ConfigError for the first key nothing reads, value out of range, or options that do not go
    together, before torch is imported. ``choices``: group -> option (``model`` -> ``mlp``), for the words;
    ``overrides``: the command line's, checked against what an agent's run reads."""
    choices = choices or {}
    if cfg.get("agent") is not None:
        check_agent_overrides(overrides, choices.get("agent", "agent"), cfg.agent)
    check_keys(cfg, choices)
    config.check_ranges(cfg)
    for path in COMPONENTS:
        node = OmegaConf.select(cfg, path, default=None, throw_on_missing=False)
        if isinstance(node, DictConfig):
            check_options(path, node)


def check_agent_overrides(overrides: Iterable[str], agent: str, node: Any = None) -> None:
    """An agent learns from its environment: a dataset, a schedule of epochs, batches or pictures given with it
    would be ignored, so it is refused, naming the key this agent (``node``, its config) reads instead where
    it has one."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        for path in NOT_FOR_AGENTS:
            if key == path or key.startswith(path + "."):
                instead = AGENT_INSTEAD.get(path)
                if instead and instead.startswith("agent.") and node is not None and instead[6:] not in node:
                    instead = None  # e.g. agent.max_grad_norm, which agent=mpc has not
                raise ConfigError(f"{item}: agent={agent} learns from its environment and does not read {path}"
                                  + (f"; it reads {instead}" if instead else "")
                                  + " (docs/ARCHITECTURE.md, \"Agents\")")


def owner(path: str, choices: Mapping[str, str]) -> str:
    """How a message names a node: ``model=mlp`` where the group's option is known, else its path."""
    return f"{path}={choices[path]}" if path in choices else path


def check_keys(cfg: DictConfig, choices: Mapping[str, str]) -> None:
    top = [f.name for f in dataclasses.fields(config.TrainConf)]
    for key in cfg:
        if key not in top and key != "hydra":  # (Hydra's own node, in a config composed with it)
            raise ConfigError(top_level_line(str(key), cfg))
    for group, schema in SCHEMA.items():
        node = cfg.get(group)
        if isinstance(node, DictConfig):
            unknown_keys(group, node, [f.name for f in dataclasses.fields(schema)], group)
    for path in COMPONENTS:
        node = OmegaConf.select(cfg, path, default=None, throw_on_missing=False)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue  # no component here (a missing _target_ is the build's to name)
        target = node.get("_target_")
        takes = options.of(target) if target is not None else options.Takes(())
        if takes is not None:  # a target nnexp does not ship: nnexp/build.py checks it against its signature
            unknown_keys(path, node, takes.keys, owner(path, choices))


def unknown_keys(path: str, node: DictConfig, known: Iterable[str] | None, named: str) -> None:
    """ConfigError for the first key of ``node`` (at ``path``) that is not one of ``known`` (None: anything
    goes, a target that takes ``**kwargs``)."""
    if known is None:
        return
    known = [k for k in known if k not in INSTANTIATE_KEYS and k not in RUNTIME.get(path, ())]
    for key in node:
        if key not in known and key not in INSTANTIATE_KEYS:
            raise ConfigError(key_line(f"{path}.{key}", named, known, "" if known else f"; {named} reads no keys"))


def key_line(full_key: str, named: str, keys: list[str], note: str = "") -> str:
    """``full_key`` is not a key of the node ``named`` (which has ``keys``): the closest keys, and the other
    options of its group that have it (``model.depth``: ``model=resnet``)."""
    group, _, key = full_key.partition(".")
    elsewhere = [f"{group}={o}" for o in options_with(group, key) if f"{group}={o}" != named]
    if elsewhere:
        note += f"; it is a key of {' and '.join(elsewhere)}"
    return suggest.not_a_key(full_key, named, keys, note)


def options_with(group: str, key: str) -> list[str]:
    """The options of a component group (the config tree's files) whose config has ``key``."""
    if group not in COMPONENTS or "." in key:
        return []
    found = []
    for file in sorted((Path(config.config_dir()) / group).glob("*.yaml")):
        try:
            node = OmegaConf.load(file)
        except Exception:  # noqa: BLE001 - a file Hydra would refuse too: not ours to report here
            continue
        if isinstance(node, DictConfig) and key in node:
            found.append(file.stem)
    return found


def signature_keys(target: Any) -> list[str] | None:
    """The keyword arguments a callable takes (None: any, it has ``**kwargs``, or its signature is unknown)."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def top_level_line(key: str, cfg: DictConfig | None = None) -> str:
    """A top-level key that is not the schema's: a misspelt group (``modle``), a key of a group given alone
    (``lr``: ``optimizer.lr``, from ``cfg``), or a ``+group/option`` whose group does not exist, which Hydra
    made a key (``experiment/deep_nte``)."""
    from nnexp.hydra_errors import config_groups

    try:
        groups = config_groups(recursive="/" in key)
    except Exception:  # noqa: BLE001 - Hydra's loader unavailable: the schema's names alone
        groups = [f.name for f in dataclasses.fields(config.TrainConf) if f.name not in ("loss", "expect")]
    keys = [f.name for f in dataclasses.fields(config.TrainConf) if f.name not in groups]
    return suggest.not_a_group(key, groups, keys, _leaves(cfg) if cfg is not None else ())


def _leaves(cfg: DictConfig) -> list[str]:
    """The dotted keys of the config's groups (``optimizer.lr``, ``regularizer.early_stopping.patience``)."""
    found: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        for key, value in node.items():
            if key in INSTANTIATE_KEYS:
                continue
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            elif prefix:
                found.append(f"{prefix}{key}")

    tree = OmegaConf.to_container(cfg, resolve=False)
    walk("", {k: v for k, v in tree.items() if k != "hydra" and isinstance(v, dict)})
    return found


def check_options(path: str, node: DictConfig) -> None:
    """The options of the component at ``path`` through its registered check, with the composed values; a
    component that is not registered, or a value that does not resolve yet, is left to its build (no node at
    ``path``, as ``agent`` in a supervised run: nothing to check)."""
    if not isinstance(node, DictConfig):
        return
    target = node.get("_target_")
    takes = options.of(target) if target is not None else None
    if takes is None or takes.check is None:
        return
    try:
        values = OmegaConf.to_container(node, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that does not resolve: the build names it
        return
    wanted = takes.check_keys()
    if not all(k in values for k in wanted) or any(isinstance(values[k], dict) for k in wanted):
        return  # a default the constructor has (or an object built for it): it checks itself when built
    try:
        takes.check(**{k: values[k] for k in wanted})
    except OptionError as exc:
        raise ConfigError(exc.in_group(path)) from None
    except ValueError as exc:  # options that do not go together: the words nnexp/build.py gives them
        raise ConfigError(f"{path}: {exc}") from None
