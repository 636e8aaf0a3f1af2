"""Read YAML strictly: a duplicate key or a syntax error is an error naming file and line.

PyYAML (and so Snakemake's own config reader) lets the last copy of a duplicated mapping key
win without a word: `lr: 0.01` ... `lr: 5.0` trains at 5.0. Here a duplicate is refused. Keys
brought in by a YAML merge (`<<: *defaults`) may be overridden, as the merge key means.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml


class YamlError(ValueError):
    """A YAML file cannot be read as written; the message starts with `file:line:`."""


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first_line
                except TypeError:  # an unhashable key: SafeLoader itself reports it
                    continue
                if seen:
                    raise _DuplicateKey(
                        problem=f"duplicate key {key!r} (first defined at line {first_line[key]}); "
                        "YAML readers would silently keep only the last copy",
                        problem_mark=key_node.start_mark,
                    )
                first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, name: str):
    """Parse YAML `text`; `name` (usually the file's path) starts every error message."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as err:
        mark = err.problem_mark
        raise YamlError(f"{name}:{mark.line + 1}: {err.problem}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        context = ""
        if err.context:
            started = err.context_mark
            at = f" at line {started.line + 1}" if started is not None and started is not mark else ""
            context = f" ({err.context}{at})"
        raise YamlError(f"{where}: not valid YAML: {err.problem}{context}") from None
    except yaml.YAMLError as err:
        raise YamlError(f"{name}: not valid YAML: {err}") from None


def load_yaml_file(path: str | os.PathLike):
    """Parse the YAML file at `path` strictly (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise YamlError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise YamlError(f"{path}: cannot be read ({err.strerror})") from None
    return load_yaml_text(text, str(path))

