"""Reading the rules file and the grid registry from disk (the core never opens files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from handlers.errors import ConfigError
from handlers.registry import Registry, compile_registry
from handlers.rules import Rules, compile_rules

# libyaml's loader when PyYAML has it (about ten times faster on the registry), else Python's.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_REPO_ROOT = Path(__file__).resolve().parent.parent
_PACKAGED = Path(__file__).resolve().parent / "_data"


def _default(repo_relative: str, packaged_name: str) -> Path:
    """A checkout uses the repo's file; an installed wheel uses the copy packed inside it."""
    in_repo = _REPO_ROOT / repo_relative
    return in_repo if in_repo.exists() else _PACKAGED / packaged_name


def default_rules_path() -> Path:
    return _default("escalation_rules.yaml", "escalation_rules.yaml")


def default_registry_path() -> Path:
    return _default("examples/registry.yaml", "registry.yaml")


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read the file: {err.strerror}"]) from None
    try:
        return yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as err:
        raise ConfigError(str(path), [f"not valid YAML: {err}"]) from None


def load_registry(path: Path | None = None) -> Registry:
    path = path or default_registry_path()
    return compile_registry(read_yaml(path), str(path))


def load_rules(path: Path | None, registry: Registry) -> Rules:
    path = path or default_rules_path()
    return compile_rules(read_yaml(path), str(path), registry)
