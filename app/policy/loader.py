"""Reading a policy file, with every problem reported at the line and column of the YAML key that causes it."""

import difflib
import types
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.policy.schemas import Policy

DEFAULT_POLICY_PATH = Path(__file__).with_name("default.yaml")
MAX_POLICY_BYTES = 1024 * 1024
Location = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    source: str
    line: int | None
    column: int | None
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line is not None else self.source
        return f"{where}: {self.location}: {self.message}" if self.location else f"{where}: {self.message}"


class PolicyFileError(Exception):
    """The policy file cannot be used; `problems` says where and why."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        super().__init__("invalid policy:\n" + "\n".join(f"  {problem}" for problem in problems))


def load_policy(path: Path | str) -> Policy:
    """Read and validate a policy file; raise PolicyFileError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PolicyFileError([PolicyProblem(str(path), None, None, "", f"cannot read: {error.strerror}")]) from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyFileError([PolicyProblem(str(path), None, None, "", "larger than 1 MiB; not a policy file")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyFileError([PolicyProblem(str(path), None, None, "", f"not UTF-8 text: {error.reason}")]) from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    root = _compose(text, source)
    data: dict[str, Any] = {}
    if root is not None:
        try:
            data = yaml.SafeLoader("").construct_document(root)
        except yaml.MarkedYAMLError as error:  # e.g. an unknown tag or an unhashable key
            raise PolicyFileError([_yaml_problem(error, source)]) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        problems = [_problem_for(detail, root, source) for detail in error.errors()]
        raise PolicyFileError(sorted(problems, key=_position)) from None


def check_policy_file(path: Path | str) -> list[str]:
    """Messages for `steward policy check FILE`, one per problem and each naming its line; empty when valid."""
    try:
        load_policy(path)
    except PolicyFileError as error:
        return [str(problem) for problem in error.problems]
    return []


@cache
def default_policy() -> Policy:
    """The policy shipped with Steward (app/policy/default.yaml)."""
    return load_policy(DEFAULT_POLICY_PATH)


def _compose(text: str, source: str) -> yaml.MappingNode | None:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise PolicyFileError([_yaml_problem(error, source)]) from None
    except yaml.reader.ReaderError as error:  # a control character: the position is a character offset
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        code = error.character if isinstance(error.character, int) else ord(error.character)
        message = f"YAML error: character U+{code:04X} is not allowed"
        raise PolicyFileError([PolicyProblem(source, line, column, "", message)]) from None
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        line, column = root.start_mark.line + 1, root.start_mark.column + 1
        raise PolicyFileError([PolicyProblem(source, line, column, "", "the policy must be a mapping of keys")])
    problems = _structure_problems(root, source)
    if problems:
        raise PolicyFileError(problems)
    return root


def _yaml_problem(error: yaml.MarkedYAMLError, source: str) -> PolicyProblem:
    mark = error.problem_mark or error.context_mark
    message = f"YAML error: {error.problem or error.context}"
    if mark is None:
        return PolicyProblem(source, None, None, "", message)
    return PolicyProblem(source, mark.line + 1, mark.column + 1, "", message)


def _structure_problems(root: yaml.Node, source: str) -> list[PolicyProblem]:
    """Duplicate keys (PyYAML keeps the last one silently) and aliases (they can expand exponentially)."""
    problems: list[PolicyProblem] = []
    first_use: dict[int, str] = {}
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, location = stack.pop()
        if id(node) in first_use:
            message = f"anchors and aliases are not supported (this value is also used at {first_use[id(node)]})"
            problems.append(_at(node, source, location, message))
            continue
        first_use[id(node)] = location
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            keys_seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in keys_seen:
                    problems.append(_at(key_node, source, _join(location, key), "duplicate key"))
                keys_seen.add(key)
                children.append((value_node, _join(location, key)))
        elif isinstance(node, yaml.SequenceNode):
            children.extend((item, _join(location, index)) for index, item in enumerate(node.value))
        stack.extend(reversed(children))  # visit in document order, so the later use is the one reported
    return sorted(problems, key=_position)


def _problem_for(detail: ErrorDetails, root: yaml.Node | None, source: str) -> PolicyProblem:
    loc: Location = tuple(detail["loc"])
    node = _node_at(root, loc)
    location = ".".join(str(part) for part in loc)
    if detail["type"] == "extra_forbidden":
        message = _unknown_key_message(loc)
    elif detail["type"] == "missing":
        message = f"required key '{loc[-1]}' is missing"
        location = ".".join(str(part) for part in loc[:-1])
    else:
        message = detail["msg"].removeprefix("Value error, ")
    if node is None:
        return PolicyProblem(source, None, None, location, message)
    return _at(node, source, location, message)


def _node_at(root: yaml.Node | None, loc: Location) -> yaml.Node | None:
    """The key node (or list item) the error location points at, or its nearest ancestor that exists."""
    found: yaml.Node | None = root
    node: yaml.Node | None = root
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next(((k, v) for k, v in node.value if str(k.value) == part), None)
            if match is None:
                break
            found, node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            found = node = node.value[part]
        else:
            break
    return found


def _unknown_key_message(loc: Location) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1])
    if not allowed:
        return f"unknown key '{key}'"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
    return f"unknown key '{key}'{hint}"


def _allowed_keys(loc: Location) -> list[str]:
    """The field names of the model found by following `loc` from Policy."""
    model: type[BaseModel] | None = Policy
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            model = _model_in(argument)
            if model is not None:
                return model
    return None


def _at(node: yaml.Node, source: str, location: str, message: str) -> PolicyProblem:
    return PolicyProblem(source, node.start_mark.line + 1, node.start_mark.column + 1, location, message)


def _position(problem: PolicyProblem) -> tuple[int, int]:
    return (problem.line or 0, problem.column or 0)


def _join(location: str, part: int | str) -> str:
    return f"{location}.{part}" if location else str(part)
