"""JSON Schema (draft 07, as AsyncAPI 3.0 uses it) of the types typed handlers declare.

The schema says what ``stelar_core.payloads`` accepts: the same strictness (no extra fields on
objects, integers are integers), fields with a default are optional, and the common attrs
validators carry over (``max_len`` -> ``maxLength``/``maxItems``, ``min_len``, ``in_`` ->
``enum``, ``gt``/``ge``/``lt``/``le``, ``matches_re`` -> ``pattern``). Classes (attrs,
dataclasses, TypedDicts) become named schemas, referenced where used.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from collections.abc import Callable
from typing import Any, is_typeddict

import attrs
from cattrs.cols import is_any_set, is_mapping, is_sequence

from stelar_core.payloads import is_object_type, is_tuple

Schema = dict[str, Any]
PRIMITIVES: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}
_NAME = re.compile(r"[^A-Za-z0-9._-]")


class SchemaBuilder:
    """Builds schemas, collecting the named ones (``definitions``) it meets on the way.
    ``reference(name)`` says how a named schema is pointed at."""

    def __init__(self, reference: Callable[[str], str]) -> None:
        self.definitions: dict[str, Schema] = {}
        self._reference = reference
        self._names: dict[Any, str] = {}

    def schema(self, kind: Any) -> Schema:
        if kind is None or kind is Any or kind is object:
            return {}
        if kind in PRIMITIVES:
            return dict(PRIMITIVES[kind])
        origin = typing.get_origin(kind)
        arguments = typing.get_args(kind)
        if origin is typing.Literal:
            return {"enum": list(arguments)}
        if origin is typing.Union or origin is types.UnionType:
            return {"anyOf": [self.schema(argument) for argument in arguments]}
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"enum": [member.value for member in kind]}
        if is_object_type(kind):
            return {"$ref": self._reference(self._named(kind))}
        if is_tuple(kind):
            if len(arguments) == 2 and arguments[1] is Ellipsis:
                return {"type": "array", "items": self.schema(arguments[0])}
            items = [self.schema(argument) for argument in arguments]
            return {"type": "array", "items": items, "minItems": len(items), "maxItems": len(items)}
        if is_mapping(kind):
            values = self.schema(arguments[1]) if len(arguments) == 2 else {}
            return {"type": "object", "additionalProperties": values}
        if is_sequence(kind) or is_any_set(kind):
            array: Schema = {"type": "array", "items": self.schema(arguments[0]) if arguments else {}}
            if is_any_set(kind):
                array["uniqueItems"] = True
            return array
        return {"description": f"a {getattr(kind, '__name__', kind)!s} (no JSON schema for this type)"}

    def _named(self, kind: Any) -> str:
        if kind in self._names:
            return self._names[kind]
        name = base = _NAME.sub("_", kind.__name__)
        counter = 2
        while name in self.definitions:
            name, counter = f"{base}{counter}", counter + 1
        self._names[kind] = name
        self.definitions[name] = {}  # reserved first: a class may refer to itself
        self.definitions[name] = self._object(kind)
        return name

    def _object(self, kind: Any) -> Schema:
        hints = typing.get_type_hints(kind)
        properties: dict[str, Schema] = {}
        required: list[str] = []
        if attrs.has(kind):
            for field in attrs.fields(kind):
                properties[field.name] = {**self.schema(hints.get(field.name, field.type)), **_rules(field)}
                if field.default is attrs.NOTHING:
                    required.append(field.name)
        elif dataclasses.is_dataclass(kind):
            for field in dataclasses.fields(kind):
                properties[field.name] = self.schema(hints.get(field.name, field.type))
                if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                    required.append(field.name)
        elif is_typeddict(kind):
            for name, hint in hints.items():
                properties[name] = self.schema(hint)
            required = sorted(kind.__required_keys__)
        schema: Schema = {"type": "object", "title": kind.__name__, "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        if kind.__doc__ and not kind.__doc__.startswith(f"{kind.__name__}("):  # not a dataclass's own
            schema["description"] = " ".join(kind.__doc__.split())
        return schema


def _rules(field: attrs.Attribute[Any]) -> Schema:
    """What the common attrs validators of ``field`` say, as JSON Schema keywords."""
    found: Schema = {}
    pending = [field.validator] if field.validator is not None else []
    while pending:
        validator = pending.pop()
        pending.extend(getattr(validator, "_validators", ()))  # and_(...), a list of validators
        is_string = field.type in (str, "str")
        if hasattr(validator, "max_length"):
            found["maxLength" if is_string else "maxItems"] = validator.max_length
        if hasattr(validator, "min_length"):
            found["minLength" if is_string else "minItems"] = validator.min_length
        if hasattr(validator, "options") and isinstance(validator.options, list | tuple | set | frozenset):
            found["enum"] = sorted(validator.options, key=repr)
        if hasattr(validator, "bound") and hasattr(validator, "compare_op"):
            keyword = {">": "exclusiveMinimum", ">=": "minimum", "<": "exclusiveMaximum", "<=": "maximum"}
            if validator.compare_op in keyword:
                found[keyword[validator.compare_op]] = validator.bound
        if hasattr(validator, "pattern") and hasattr(validator.pattern, "pattern"):
            found["pattern"] = validator.pattern.pattern
    return found
