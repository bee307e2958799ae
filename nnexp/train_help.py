"""``nnexp train --help``: the config groups a user picks from, each option with the line of its YAML that says
what it is, and the keys of the config the command line composes, each with the comment its YAML gives it.

The text comes from the config tree itself (``conf/``): the first comment line of a YAML is a command that
uses it, the next ones describe it; a key's comment is the one on its line, or the comment lines just above
it. Internals stay out: ``_target_``/``_partial_`` lines, the sub-groups that hold a preset's arms
(``experiment/deep_net``; ``+experiment/deep_net=...`` still works), Hydra's own groups (``--hydra-help``).
Imports Hydra, never torch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HEADER = """\
nnexp train: train one model (or a sweep with -m) and log its curves to TensorBoard.

usage: nnexp train [-m] [group=option ...] [key=value ...]
       nnexp train model=resnet --help     the keys of the config those overrides compose

examples:
  nnexp train                                          offline demo: overfitting + early stopping
  nnexp train dataset=moons 'model.hidden=[16,16]'     pick a dataset, shrink the model (quote [..] for zsh)
  nnexp train optimizer=sgd optimizer.lr=0.05 scheduler=cosine
  nnexp train -m regularizer=none,l2,dropout,early_stopping trainer.seed=0,1,2
  nnexp train experiment=mitigations                   a preset: a sweep whose claims nnexp report checks
  nnexp train --cfg job                                print the composed config, run nothing
"""
FOOTER = """\
Runs land in outputs/runs/<date>/<time>_<id>_<model>-<dataset>_<overrides> (sweeps in outputs/multirun/...);
look at them with: tensorboard --logdir outputs      compare a sweep: nnexp report <sweep dir>
Hydra's own flags (launchers, sweepers, logging, shell completion): nnexp train --hydra-help
"""
GROUPS = ("dataset", "model", "optimizer", "scheduler", "regularizer", "trainer", "agent", "experiment", "debug",
          "hparams_search")
KEYED = ("dataset", "model", "optimizer", "scheduler", "regularizer", "trainer", "agent")  # groups whose keys are listed
HIDDEN_KEYS = ("_target_", "_partial_", "defaults")
DESCRIPTION = 62  # characters of an option's description: a line of the group list stays within 100
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w]*):(.*)$")


def _cut(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit - 4].rsplit(" ", 1)[0].rstrip(",;:(") + " ..."


def describe(path: Path) -> str:
    """What an option is, in one line: its header (the comments before the first key) less the command that
    uses it, ``Claim (course, ...):`` prefixes read as the claim itself."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line[1:].strip())
    words = []
    for line in header:
        if line.startswith("@package") or not line:
            continue
        if line.startswith("nnexp "):
            if "—" in line:  # "nnexp train scheduler=none   — constant learning rate"
                words.append(line.split("—", 1)[1].strip())
            continue
        words.append(line)
    text = re.sub(r"^Claim \(([^)]*)\):\s*", r"\1: ", " ".join(words))
    return _cut(text, DESCRIPTION)


def key_comments(path: Path) -> dict[str, str]:
    """``{"early_stopping.patience": "epochs without improvement before stopping", ...}`` from a YAML's text:
    the comment on a key's own line, else the comment lines right above it (past the file's header)."""
    found: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    above: list[str] = []
    seen_key = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if seen_key:  # the file's header comments describe the file, not its first key
                above.append(stripped[1:].strip())
            continue
        match = _KEY_LINE.match(line)
        if not match:
            above = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        seen_key = True
        while parents and parents[-1][0] >= indent:
            parents.pop()
        full = ".".join([p for _, p in parents] + [key])
        inline = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        if inline or above:
            found[full] = inline or _cut(above[0], 100)
        above = []
        if not rest.split("#", 1)[0].strip():  # a mapping opens here
            parents.append((indent, key))
    return found


def _options(conf: Path, group: str) -> list[tuple[str, str]]:
    return [(p.stem, describe(p)) for p in sorted((conf / group).glob("*.yaml"))]


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _flat(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, unresolved value) for every leaf of a group's config node, internals left out."""
    from omegaconf import DictConfig, OmegaConf

    out = []
    for key in node:
        if key in HIDDEN_KEYS:
            continue
        child = node._get_node(key)
        full = f"{prefix}{key}"
        if isinstance(child, DictConfig) and not child._is_interpolation():
            out += _flat(child, full + ".")
        else:
            raw = child._value() if child._is_interpolation() else OmegaConf.to_container(node, resolve=False)[key]
            out.append((full, raw))
    return out


def _compose(conf: Path, overrides: list[str]) -> tuple[Any, dict[str, str], str]:
    """The config the command line composes (its overrides, or the defaults when they do not compose)."""
    from hydra import compose, initialize_config_dir

    from nnexp import config

    config.register()
    note = ""
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        try:
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        except Exception as exc:  # noqa: BLE001 - help still helps: the defaults, and why
            note = f"(the overrides given do not compose: {str(exc).splitlines()[0]}; showing the defaults)\n"
            cfg = compose("train", return_hydra_config=True)
    choices = {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items() if not str(k).startswith("hydra")}
    return cfg, choices, note


def render(overrides: list[str], conf: Path | None = None) -> str:
    """The whole help text for ``nnexp train <overrides> --help``."""
    from nnexp import config

    conf = conf or config.config_dir()
    cfg, choices, note = _compose(conf, [o for o in overrides if "=" in o])
    out = [HEADER, note, "Config groups (group=option; * marks the one this command uses):"]
    for group in GROUPS:
        chosen = choices.get(group)
        for i, (name, what) in enumerate(_options(conf, group)):
            mark = "*" if name == chosen else " "
            out.append(f"  {group if i == 0 else '':<15}{mark}{name:<21}{what}".rstrip())
        out.append("")
    out.append("Keys of that config (key=value to change one; the comment comes from its YAML):")
    for group in KEYED:
        comments: dict[str, str] = {}
        option = choices.get(group, "")
        files = sorted((conf / group).glob("*.yaml"), key=lambda p: p.stem != option)  # the chosen one first
        for path in files:
            comments = {**key_comments(path), **comments}
        if cfg.get(group) is None:  # agent: none chosen (a supervised run)
            continue
        rows = [(f"{group}.{key}={_value(value)}", comments.get(key, "")) for key, value in _flat(cfg[group])]
        if not rows:
            continue
        out.append(f"  {group} ({option}):" if option else f"  {group}:")
        width = min(44, max(len(r[0]) for r in rows))
        out += [f"    {kv:<{width}}  # {why}".rstrip(" #") if why else f"    {kv}" for kv, why in rows]
    out += ["", FOOTER]
    return "\n".join(out)


def main(overrides: list[str]) -> int:
    sys.stdout.write(render(overrides))
    return 0
