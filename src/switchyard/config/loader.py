"""YAML loading with line numbers, `${ENV}` interpolation and readable validation errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from switchyard.config.schema import SwitchyardConfig, cross_reference_problems
from switchyard.errors import ConfigError

KeyPath = tuple[str | int, ...]
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _node_to_data(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[tuple[KeyPath, str]]
) -> Any:
    """Build plain Python data from a YAML node tree, remembering each key path's line.

    A key given twice in one mapping is a problem (YAML would silently keep the last one)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(
                key_node, yaml.ScalarNode) else key_node.value
            if key in result:
                first = lines[(*path, key)]
                problems.append(((*path, key), f"duplicate key {key!r} (first on line {first})"))
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _node_to_data(value_node, (*path, key), lines, problems)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _node_to_data(child, (*path, i), lines, problems) for i, child in enumerate(node.value)
        ]
    # Construct the scalar from its resolved node (an empty value is a null node: None).
    return yaml.SafeLoader("").construct_object(node)


def _interpolate(data: Any, path: KeyPath, env: Mapping[str, str], problems: list[
        tuple[KeyPath, str]]) -> Any:
    if isinstance(data, dict):
        return {k: _interpolate(v, (*path, k), env, problems) for k, v in data.items()}
    if isinstance(data, list):
        return [_interpolate(v, (*path, i), env, problems) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append((path, f"environment variable {name} is not set"))
        return ""

    return _ENV_PATTERN.sub(replace, data)


def _line_for(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None


def _format(source: str, path: KeyPath, message: str, lines: Mapping[KeyPath, int]) -> str:
    dotted = ".".join(str(p) for p in path) or "<root>"
    line = _line_for(path, lines)
    where = f"{source}:{line}" if line is not None else source
    return f"{where}: {dotted}: {message}"


def _clean_loc(loc: tuple[str | int, ...]) -> KeyPath:
    """Drop pydantic's union-tag segments (e.g. 'keyword') that are not real YAML keys."""
    cleaned: list[str | int] = []
    for part in loc:
        if part == "not_":
            part = "not"
        cleaned.append(part)
    return tuple(cleaned)


def load_config_text(
    text: str, source: str = "<config>", env: Mapping[str, str] | None = None
) -> SwitchyardConfig:
    """Parse and validate; raise ConfigError listing every problem with file:line and key."""
    lines: dict[KeyPath, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{source}{line}: invalid YAML: {exc}"]) from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise ConfigError([f"{source}:1: the configuration must be a YAML mapping"])
    early_problems: list[tuple[KeyPath, str]] = []  # duplicate keys, missing env variables
    data = _node_to_data(root, (), lines, early_problems)
    data = _interpolate(data, (), os.environ if env is None else env, early_problems)
    if early_problems:
        raise ConfigError([_format(source, p, m, lines) for p, m in early_problems])
    try:
        cfg = SwitchyardConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_messages(exc, source, lines, data)) from None
    problems = cross_reference_problems(cfg)
    if problems:
        raise ConfigError([_format(source, p, m, lines) for p, m in problems])
    return cfg


def _validation_messages(
    exc: ValidationError, source: str, lines: Mapping[KeyPath, int], data: Any
) -> list[str]:
    messages: list[str] = []
    for error in exc.errors():
        path = _real_path(_clean_loc(tuple(error["loc"])), data)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}" if path else message
        messages.append(_format(source, path, message, lines))
    return messages


_TYPE_SEGMENT = re.compile(r"^(str|int|float|bool|list|dict|none)\b|[\[(]")


def _real_path(loc: KeyPath, data: Any) -> KeyPath:
    """Keep only the segments of a pydantic location that exist in the YAML data.

    Pydantic inserts union tags (`keyword`) and type names (`list[str]`) into locations; those
    are skipped. A key that is missing from the data is kept (the message names it).
    """
    real: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            real.append(part)
        elif isinstance(node, dict) and isinstance(part, str):
            if node.get("type", "openai") == part or _TYPE_SEGMENT.search(part):
                continue
            real.append(part)
            break
        elif isinstance(part, str) and _TYPE_SEGMENT.search(part):
            continue
        else:
            break
    return tuple(real)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> SwitchyardConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from None
    return load_config_text(text, str(file), env)
