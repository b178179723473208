"""Reading YAML the project accepts: specs, `--set` values, run directories' config.yaml.

PyYAML's safe loader constructs only plain data, but it still accepts what is almost
always a mistake or an attack: a key given twice (the last silently wins) and aliases
that expand a kilobyte into gigabytes (each `*ref` is shared while loading, then copied
by every later walk over the data). This loader refuses both, bounds nesting, and turns
every failure into a ConfigError of the form `file:line: problem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from unified_prompt.errors import ConfigError

#: Nodes aliases may add to a document beyond the nodes written out in it.
MAX_ALIAS_EXPANSION = 10_000
#: Nested mappings/sequences deeper than this are refused (PyYAML recurses).
MAX_DEPTH = 100


class _Refused(yaml.YAMLError):
    def __init__(self, line: int | None, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(problem)


class YamlRefusedError(ConfigError):
    """Well-formed YAML this loader refuses: a duplicate key, an alias bomb, deep nesting."""

    def __init__(self, message: str, *, problem: str, source: str | None = None) -> None:
        self.problem = problem
        super().__init__(message, source=source, problems=[(source or "(yaml)", problem)])


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys and alias bombs, and bounds nesting."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _check_size(node)
        return node

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        depth = getattr(self, "_depth", 0)
        if depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Refused(mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` overrides on purpose
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _Refused(line, f"duplicate key {key!r} (first given on line {seen[key]})")
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: the base class reports it
        return super().construct_mapping(node, deep=deep)


def _check_size(root: yaml.Node | None) -> None:
    """Refuse a document whose aliases add more than MAX_ALIAS_EXPANSION nodes.

    Each node's expanded size is computed once (memoised by identity), so checking an
    alias bomb costs as little as composing it."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    written = 0

    def expanded(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias counts once here; PyYAML rejects it anyway
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                children += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1 + sum(expanded(c) for c in children)
        sizes[key] = total
        if total > written + MAX_ALIAS_EXPANSION:
            raise _Refused(node.start_mark.line + 1,
                           f"aliases expand this document past {MAX_ALIAS_EXPANSION:,} extra "
                           "nodes (refused: write the values out, or use fewer nested aliases)")
        return total

    written = _written_nodes(root)
    expanded(root)


def _written_nodes(root: yaml.Node) -> int:
    """Nodes as written: an alias's target counts once, where the anchor is."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(node.value)
    return len(seen)


def parse_yaml(text: str, source: str | None = None) -> Any:
    """`text` as plain data; ConfigError `source:line: ...` for anything refused."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except _Refused as exc:
        raise YamlRefusedError(_where(source, exc.line) + exc.problem, problem=exc.problem,
                               source=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise _config_error(source, mark.line + 1 if mark else None,
                            f"not valid YAML: {problem}") from None
    except RecursionError:
        problem = "nested too deeply"
        raise YamlRefusedError(_where(source, None) + problem, problem=problem,
                               source=source) from None


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree (for line numbers), or None when the text does not compose."""
    try:
        return yaml.compose(text, Loader=StrictLoader)
    except (yaml.YAMLError, RecursionError):
        return None


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped); ConfigError naming the line of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _config_error(source, line, "not UTF-8 text (save the file as UTF-8)") from None


def read_yaml_file(path: str | Path) -> tuple[Any, str]:
    """(data, text) of a YAML file, read as parse_yaml reads text."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", source=str(path)) from None
    text = decode_text(raw, str(path))
    return parse_yaml(text, str(path)), text


def _where(source: str | None, line: int | None) -> str:
    """`file:line: `, `file: `, `line N: ` or nothing, to put before a problem."""
    if source and line:
        return f"{source}:{line}: "
    if source:
        return f"{source}: "
    return f"line {line}: " if line else ""


def _config_error(source: str | None, line: int | None, problem: str) -> ConfigError:
    return ConfigError(_where(source, line) + problem, source=source,
                       problems=[(source or "(yaml)", problem)])
