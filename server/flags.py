"""The settings as command-line flags: one per setting, named after it, made from its field."""

from __future__ import annotations

import argparse
from typing import Any

from .settings import (
    SECTION_OF,
    SECTIONS,
    Settings,
    SettingsError,
    default_text,
    env_name,
    flag_name,
    shape,
)


def flags(*sections: str) -> argparse.ArgumentParser:
    """A parent parser with the flags of `sections`, a group each."""
    parent = argparse.ArgumentParser(add_help=False)
    for section in sections:
        add_flags(parent.add_argument_group(f"{section} settings ({SECTIONS[section].__doc__.strip().rstrip('.')})"), section)
    return parent


OLD_FLAGS = {"models_file": "--models", "schema_dirs": "--schemas", "allowed_roots": "--allow-root",
             "remote_servers": "--remote-server", "allowed_hosts": "--allowed-host", "allowed_origins": "--allowed-origin"}
"""Spellings of earlier releases, still accepted (and not shown)."""


def add_flags(parser: Any, section: str, only: tuple[str, ...] | None = None) -> None:
    """One flag per setting of `section`, named after it; values go to pydantic as given (strings),
    so a flag and its variable are checked, and refused, alike."""
    for name, field in SECTIONS[section].model_fields.items():
        if only is not None and name not in only:
            continue
        kind, choices = shape(name)
        options: dict[str, Any] = {"dest": name, "default": None}
        if kind is bool:
            options |= {"action": "store_const", "const": True}
        elif kind in (tuple, dict):
            options |= {"action": "append", "metavar": "KEY=VALUE" if kind is dict else name.rstrip("s").upper()}
        else:
            options |= {"choices": choices, "metavar": None if choices else name.upper()}
        repeatable = " (repeatable)" if kind in (tuple, dict) else ""
        help = f"{field.description}{repeatable} (default: {default_text(field).replace('`', '')}) [{env_name(name)}]"
        parser.add_argument(flag_name(name), help=help, **options)
        if name in OLD_FLAGS:
            parser.add_argument(OLD_FLAGS[name], help=argparse.SUPPRESS, **options)


def settings_from(args: argparse.Namespace):
    """The settings: defaults, then the environment, then the flags given."""
    given: dict[str, Any] = {}
    for name in SECTION_OF:
        value = getattr(args, name, None)
        if value is not None and shape(name)[0] is dict:
            value = _pairs(name, value)
        given[name] = value
    return Settings.load(**given)


def _pairs(name: str, entries: list[str]) -> dict[str, str]:
    pairs = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{flag_name(name)} {entry!r}: expected KEY=VALUE")
        pairs[key.strip().lower()] = value.strip()
    return pairs
