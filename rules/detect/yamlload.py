"""YAML loading that remembers the line of every key and list item.

PyYAML's constructed objects forget where they came from; the loader needs ``file:line`` for every
error, so we compose nodes and build plain Python values ourselves, recording lines by path.
"""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[Any, ...]
# Rule files are small and flat; deeper nesting is either a mistake or an alias bomb.
MAX_DEPTH = 64


# libyaml parses rule files several times faster; the pure-Python loader gives the same nodes and marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    """The text is not valid YAML (or uses a construct rules must not use)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class Lines:
    """Line numbers (1-based) of keys and list items, addressed by their path from the root."""

    def __init__(self) -> None:
        self._lines: dict[Path_, int] = {}

    def set(self, path: Path_, line: int) -> None:
        self._lines[path] = line

    def of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest recorded ancestor."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())


def load_yaml(text: str) -> tuple[Any, Lines]:
    """Parse one YAML document; return its value and the line map. Raises YamlError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines = Lines()
        if node is None:
            return None, lines
        lines.set((), node.start_mark.line + 1)
        return _build(loader, node, (), lines, 0), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"YAML syntax error: {exc.problem or exc.context}"
        # The parser notices a problem where it gets stuck; the cause is often where the construct began.
        if exc.context_mark is not None and exc.problem_mark is not None and exc.context_mark.line != mark.line:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise YamlError(line, message) from None
    except yaml.YAMLError as exc:
        raise YamlError(None, f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _build(loader: Any, node: yaml.Node, path: Path_, lines: Lines, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise YamlError(node.start_mark.line + 1, "nesting too deep")
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(loader, node, path, lines, depth)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines.set((*path, index), item.start_mark.line + 1)
            items.append(_build(loader, item, (*path, index), lines, depth + 1))
        return items
    return _scalar(loader, node)


def _scalar(loader: Any, node: yaml.Node) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. an impossible date (2026-02-30): PyYAML builds it and datetime refuses
        raise YamlError(node.start_mark.line + 1, f"invalid value {node.value!r}: {exc}") from None


def _build_mapping(loader: Any, node: yaml.MappingNode, path: Path_, lines: Lines,
                   depth: int) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise YamlError(line, "merge keys ('<<') are not supported in rule files")
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError(line, "mapping keys must be plain scalars")
        key = _scalar(loader, key_node)
        if key in result:
            # PyYAML silently keeps the last duplicate; a rule author almost always meant something else.
            raise YamlError(line, f"duplicate key {key!r}")
        # A nested mapping or list is reported where it starts (a flow mapping may sit on the next line).
        nested = isinstance(value_node, yaml.MappingNode | yaml.SequenceNode)
        lines.set((*path, key), value_node.start_mark.line + 1 if nested else line)
        result[key] = _build(loader, value_node, (*path, key), lines, depth + 1)
    return result
