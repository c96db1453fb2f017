"""Settings files for the commands (``--config FILE``) and the resolved settings of a run.

A config is a YAML or JSON mapping whose keys are a command's options (``eval_runs`` or
``eval-runs`` for ``--eval-runs``; an optional positional such as condense's ``dataset``)
and, for condense, any ``CondenseConfig`` field. A saved result's ``metrics.json`` is a
condense config too: its meta records every setting (outputs such as ``seconds`` are
skipped). Precedence, lowest first: the command's defaults < the config file < flags on
the command line < ``--set KEY=VALUE``. Mistakes are one-line errors naming the file and
key. PyYAML and the package's torch-dependent parts load only when a config is read, so
``dance-ext --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from . import presets

# what a result's meta holds besides the CondenseConfig fields that is a setting of the run
RESULT_SETTINGS = ("dataset", "method", "ipc", "seed", "preset")
# image sizes of the built-in datasets, so that `dance-ext config` needs no dataset files
KNOWN_IMAGE_SIZES = {"digits": 8, "mnist": 28, "fashion-mnist": 28, "cifar10": 32, "cifar100": 32, "svhn": 32}
_FIELD_TYPES = {f.name: f.type for f in fields(presets.CondenseConfig)}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}


def read(path) -> dict:
    """The settings in ``path`` (YAML, or JSON by a .json suffix; a metrics.json gives its run's settings)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"config: no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"config: cannot read {str(path)!r} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ValueError(f"config: {path} is not valid {kind}: {' '.join(str(exc).split())}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config: {path}: expected a mapping of settings, got {type(values).__name__}")
    if "meta" in values:
        values = from_result(values, path)
    return {str(key).replace("-", "_"): value for key, value in values.items()}


def from_result(metrics: dict, where) -> dict:
    """The settings of the run that wrote ``metrics`` (a metrics.json): dataset, method, ipc,
    seed, preset, the experts it used and every CondenseConfig field."""
    meta = metrics["meta"]
    if not isinstance(meta, dict):
        raise ValueError(f"config: {where}: 'meta' is not a mapping (not a metrics.json written by dance_ext?)")
    settings = {key: meta[key] for key in (*RESULT_SETTINGS, *_FIELD_TYPES) if key in meta}
    experts = meta.get("experts")
    if isinstance(experts, dict) and experts.get("path"):
        settings["experts"] = experts["path"]
    return settings


def split(parser: argparse.ArgumentParser, values: dict, where, condense_fields: bool) -> tuple[dict, dict]:
    """``values`` as (defaults for ``parser``'s options, CondenseConfig overrides), each checked."""
    options = {a.dest: a for a in parser._actions  # noqa: SLF001  (argparse keeps no public list)
               if a.dest not in ("help", "config", "set") and (a.option_strings or a.nargs == "?")}
    defaults, overrides = {}, {}
    for key, value in values.items():
        if key in options:
            defaults[key] = _checked_option(key, value, options[key], where)
        elif condense_fields and key in _FIELD_TYPES:
            overrides[key] = _checked(key, value, _FIELD_TYPES[key], where)
        else:
            valid = sorted(options) + (sorted(set(_FIELD_TYPES) - set(options)) if condense_fields else [])
            raise ValueError(f"config: {where}: unknown key {key!r}; valid: {', '.join(valid)}")
    return defaults, overrides


def _checked_option(key: str, value, action: argparse.Action, where):
    if action.nargs == 0:  # a switch such as --resume
        return _checked(key, value, "bool", where)
    # the CLI's own parsers (cli.common.count, fraction) name the kind they return
    kind = {"int": "int", "float": "float", "fraction": "float"}.get(getattr(action.type, "__name__", ""), "str")
    if action.nargs in ("+", "*"):
        if not isinstance(value, list):
            raise ValueError(f"config: {where}: {key}: expected a list of {kind}, got {value!r}")
        value = [_checked(key, item, kind, where) for item in value]
    else:
        value = _checked(key, value, f"{kind} | None", where)
    for item in value if isinstance(value, list) else [value]:
        if action.choices is not None and item is not None and item not in action.choices:
            raise ValueError(f"config: {where}: {key}: expected one of {list(action.choices)}, got {item!r}")
        if kind != "str" and item is not None:
            try:  # the flag's own bounds (a positive count, a budget in (0, 1])
                action.type(str(item))
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"config: {where}: {key}: {exc}") from None
    return value


def _checked(key: str, value, annotation: str, where):
    """``value`` if it has the annotated type (``"int | None"`` …); ints pass as floats, and
    numeric strings too (YAML 1.1 reads 1e-3 as a string)."""
    kinds = [_TYPES[name.strip()] for name in annotation.split("|")]
    if float in kinds and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if not any(_is(value, kind) for kind in kinds):
        raise ValueError(f"config: {where}: {key}: expected {annotation.replace('|', 'or')}, got {value!r}")
    return value


def _is(value, kind: type) -> bool:
    if isinstance(value, bool):  # an int to Python, never a count here
        return kind is bool
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


def resolved(dataset: str, method: str, ipc: int, preset: str | None = None, seed: int = 0, root=None,
             overrides: dict | None = None) -> dict:
    """Every setting of a condense run, as ``dance_ext.presets.resolve`` makes them: a config
    that ``dance-ext condense --config`` runs as given."""
    name, image_size = dataset_name_and_size(dataset, root)
    config = presets.resolve(method, preset, name, ipc, image_size, dict(overrides or {}))
    return {"dataset": dataset, "preset": preset or "paper", "seed": seed, **config.to_dict()}


def dataset_name_and_size(dataset: str, root=None) -> tuple[str, tuple[int, int]]:
    """The canonical name and image size of ``dataset``: looked up for the built-in names,
    else read from the data."""
    from .data import as_class_data, known_datasets

    def key(name: str) -> str:  # the registry's alias rule
        return name.lower().replace("-", "").replace("_", "")

    for name, aliases in known_datasets().items():
        if name in KNOWN_IMAGE_SIZES and key(dataset) in {key(name), *map(key, aliases)}:
            return name, (KNOWN_IMAGE_SIZES[name],) * 2
    data = as_class_data(dataset, split="train", root=root)
    return data.name, tuple(data.image_size)


def to_yaml(settings: dict) -> str:
    import yaml

    return yaml.safe_dump(settings, sort_keys=False)
