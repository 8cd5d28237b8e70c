"""Reading a study file as its author meant it: YAML 1.2 scalars, no repeated keys.

PyYAML implements YAML 1.1, where ``1e-4`` is a string, ``010`` is eight and ``yes``/``no``
are booleans; a researcher writing a learning-rate grid means none of that. The loader here
keeps PyYAML's safe parser but resolves plain scalars by the YAML 1.2 core schema, and a key
given twice in one mapping (a repeated parameter, a repeated section) is an error naming the
key and both lines, never a silent override.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from .config import describe
from .errors import StudyError

_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
         "tag:yaml.org,2002:timestamp")  # 1.2 has no implicit dates: 2024-01-01 is a string


class RepeatedKey(Exception):
    def __init__(self, key: Any, line: int, first: int):
        super().__init__(f"line {line}: key {key!r} given twice (first at line {first})")


class TooManyDigits(Exception):
    def __init__(self, digits: int, line: int):
        super().__init__(f"line {line}: an integer of {digits:,} digits, too large for a "
                         "float (more than 1.8e308)")


class StudyLoader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema for booleans and numbers."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _CORE]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise RepeatedKey(key, line, seen[key])
                seen[key] = line
            except TypeError:  # an unhashable key: the base class reports it
                pass
        return super().construct_mapping(node, deep=deep)

    def construct_core_int(self, node: yaml.ScalarNode) -> int:
        """An integer scalar; one of more digits than Python converts (4,300) raised a bare
        ValueError out of the loader, a traceback: no setting can use one anyway."""
        text = self.construct_scalar(node)
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        try:
            return int(text, 10)
        except ValueError:
            raise TooManyDigits(len(text.lstrip("+-")), node.start_mark.line + 1) from None


StudyLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
StudyLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
StudyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
StudyLoader.add_constructor("tag:yaml.org,2002:int", StudyLoader.construct_core_int)


def parse_yaml(text: str, where: str) -> Any:
    """The document in ``text``; any problem is a StudyError prefixed with ``where``."""
    try:
        return yaml.load(text, Loader=StudyLoader)  # noqa: S506 - a SafeLoader subclass
    except (RepeatedKey, TooManyDigits) as exc:
        raise StudyError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{where}: not valid YAML{syntax_error(exc, text)}") from None
    except RecursionError:
        # PyYAML parses nested brackets and blocks by recursion: some 400 levels exhaust
        # Python's stack, and the RecursionError reached the user as a traceback
        raise StudyError(f"{where}: not valid YAML: nested too deeply (lists or mappings "
                         f"hundreds of levels inside one another)") from None


#: what PyYAML's words for the common slips mean, for someone who wrote a study file
_HINTS = {
    "could not find expected ':'": "a key without ':' after it? write key: value",
    "found character '\\t' that cannot start any token": "a tab? indent with spaces",
    "expected <block end>, but found '<block mapping start>'":
        "does its indentation line up with the lines above it?",
    "mapping values are not allowed here":
        "a ': ' inside a value? quote the value; or the line is indented deeper than the key "
        "above it",
}


def syntax_error(exc: yaml.YAMLError, text: str) -> str:
    """' at line N ('its text'): problem; hint' for a YAML syntax error: the line where the
    mistake is (a key without ':' is the line it began on, not the next one, where PyYAML gave
    up; an unclosed bracket the line that opened it), as written, and PyYAML's problem with
    what it usually means."""
    problem = getattr(exc, "problem", None) or "invalid YAML"
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None) or ""
    if context.startswith(("while scanning a simple key", "while parsing a flow")):
        mark = getattr(exc, "context_mark", None) or mark
    if mark is None:
        return f": {problem}"
    lines = re.split("\r\n|[\n\r\x85\u2028\u2029]", text)  # as PyYAML counts lines
    shown = lines[mark.line] if mark.line < len(lines) else ""
    shown = " ".join(re.sub(r"(^|\s)#.*$", "", shown).split())  # its comment left out
    if len(shown) > 40:
        shown = shown[:37] + "..."
    hint = _HINTS.get(problem)
    return (f" at line {mark.line + 1}" + (f" ({shown!r})" if shown else "") + f": {problem}"
            + (f"; {hint}" if hint else ""))


def read_yaml(path: str) -> Any:
    """Read a study file: a missing, unreadable or non-UTF-8 file is one line, not a traceback."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        if "\n" in str(path):  # the study's YAML text given where its path goes
            raise StudyError(f"no such study file: {describe(str(path))} is text of "
                             f"several lines; give the file's path (or, from Python, the "
                             f"study as a mapping: yaml.safe_load(text))") from None
        raise StudyError(f"{path}: no such study file") from None
    except IsADirectoryError:
        raise StudyError(f"{path}: is a directory, expected a study file (YAML)") from None
    except OSError as exc:
        raise StudyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise StudyError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); "
                         "save the file as UTF-8") from None
    return parse_yaml(text.removeprefix("\ufeff"), path)
