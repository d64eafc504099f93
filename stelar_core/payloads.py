"""Typed payloads: the JSON of a message ⇄ the types a handler declares, with cattrs.

A handler that annotates its payload parameter (``def chat(ctx, msg: ChatMessage)``) gets the
payload *structured* into that type before it runs: attrs classes, dataclasses, TypedDicts and
plain types (``int``, ``list[str]``, ``Literal[...]``, ``Enum``s, ``X | None``...). The check is
strict, as an edge should be: no ``"5"`` for an ``int``, no ``true`` for a number, no string for
a list, no keys the type does not have; attrs validators run too. A payload that does not fit
raises :class:`~stelar_core.errors.InvalidPayload` listing each problem as ``path: rule``
(``$.text: Length of 'text' must be <= 2000: 2001``). Answers and emits are *unstructured* the
same way (an attrs instance becomes its dict).

Untyped handlers are not wrapped at all: they cost exactly what they did.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any, is_typeddict

import attrs
import cattrs
from cattrs.cols import is_any_set, is_mapping, is_sequence, list_structure_factory, mapping_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
)
from cattrs.gen import make_dict_structure_fn
from cattrs.gen.typeddicts import make_dict_structure_fn as make_typeddict_structure_fn
from cattrs.v import format_exception

from stelar_core.errors import InvalidPayload

# Annotations that mean "the payload as it came" (no structuring).
_RAW = (inspect.Parameter.empty, Any, object)


class PayloadTypeError(TypeError):
    """A JSON value of the wrong kind, said in JSON's words."""


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_object_type(kind: Any) -> bool:
    """Types whose JSON form is an object with named fields."""
    return attrs.has(kind) or dataclasses.is_dataclass(kind) or is_typeddict(kind)


def make_converter() -> cattrs.Converter:
    """The strict converter typed handlers use (``server.converter``; register hooks on it for
    types of your own)."""
    converter = cattrs.Converter(forbid_extra_keys=True)

    def primitive(kind: type, name: str) -> Callable[[Any, Any], Any]:
        def structure(value: Any, _: Any) -> Any:
            if type(value) is kind or (kind is float and type(value) is int):
                return value
            raise PayloadTypeError(f"expected {name}, got {json_kind(value)}")

        return structure

    for kind, name in ((str, "a string"), (int, "an integer"), (float, "a number"), (bool, "a boolean")):
        converter.register_structure_hook(kind, primitive(kind, name))

    def objects(kind: Any) -> Callable[[Any, Any], Any]:
        if is_typeddict(kind):
            generated = make_typeddict_structure_fn(kind, converter, _cattrs_forbid_extra_keys=True)
        else:
            generated = make_dict_structure_fn(kind, converter, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise PayloadTypeError(f"expected an object, got {json_kind(value)}")
            try:
                return generated(value, kind)
            except ClassValidationError as exc:
                raise _attributed(exc, kind) from None

        return structure

    def arrays(kind: Any) -> Callable[[Any, Any], Any]:
        arguments = typing.get_args(kind)
        if is_tuple(kind) and not (len(arguments) == 2 and arguments[1] is Ellipsis):
            return fixed_arrays(kind, arguments)
        # The items' hook, from an array (JSON has no tuples or sets).
        as_list: Any = list.__class_getitem__(arguments[0]) if arguments else list
        generated = list_structure_factory(as_list, converter)
        origin = typing.get_origin(kind) or kind
        make = {tuple: tuple, set: set, frozenset: frozenset}.get(origin, list)

        def structure(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise PayloadTypeError(f"expected an array, got {json_kind(value)}")
            return make(generated(value, kind))

        return structure

    def fixed_arrays(kind: Any, items: tuple[Any, ...]) -> Callable[[Any, Any], Any]:
        """``tuple[int, str]``: an array of exactly those."""

        def structure(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise PayloadTypeError(f"expected an array, got {json_kind(value)}")
            if len(value) != len(items):
                raise PayloadTypeError(f"expected an array of {len(items)} items, got {len(value)}")
            return tuple(converter.structure(item, kind) for item, kind in zip(value, items, strict=True))

        return structure

    def mappings(kind: Any) -> Callable[[Any, Any], Any]:
        generated = mapping_structure_factory(kind, converter)

        def structure(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise PayloadTypeError(f"expected an object, got {json_kind(value)}")
            return generated(value, kind)

        return structure

    # Later registrations are asked first: a TypedDict is a mapping too, but an object here.
    converter.register_structure_hook_factory(is_mapping, mappings)
    converter.register_structure_hook_factory(
        lambda kind: is_sequence(kind) or is_tuple(kind) or is_any_set(kind), arrays
    )
    converter.register_structure_hook_factory(is_object_type, objects)
    return converter


def _attributed(group: ClassValidationError, kind: Any) -> ClassValidationError:
    """The errors of an attrs class's own validators (raised by the class after its fields were
    structured, so cattrs gives them no path) with the path of the field each names, as the
    fields' own errors have: attrs' messages quote it (``Length of 'text' must be <= 2000: 2001``)."""
    if not attrs.has(kind):
        return group
    for error in group.exceptions:
        notes = getattr(error, "__notes__", [])
        if any(isinstance(note, AttributeValidationNote) for note in notes):
            continue
        named = [field for field in attrs.fields(kind) if f"'{field.name}'" in str(error)]
        if len(named) == 1:
            field = named[0]
            where = f"Structuring {kind.__name__} @ {field.name}"
            error.__notes__ = [*notes, AttributeValidationNote(where, field.name, field.type)]
    return group


def is_tuple(kind: Any) -> bool:
    return kind is tuple or typing.get_origin(kind) is tuple


# --------------------------------------------------------------------------- handlers


@attrs.frozen(slots=True)
class HandlerTypes:
    """What a handler declares. ``takes_payload``: it has a second parameter (the payload);
    ``payload``: that parameter's type (``None``: the payload as it comes); ``answer``: its
    return type (``None``: not declared)."""

    takes_payload: bool = False
    payload: Any = None
    answer: Any = None

    @property
    def typed(self) -> bool:
        """Whether it needs wrapping; an untyped ``fn(ctx)`` is called as it is."""
        return self.takes_payload or self.answer is not None


def handler_types(handler: Callable[..., Any]) -> HandlerTypes:
    """Read ``def handler(ctx, payload: T) -> R``: a second parameter's annotation is the
    payload type, the return annotation the answer type."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return HandlerTypes()
    parameters = [
        p for p in signature.parameters.values() if p.kind <= p.POSITIONAL_OR_KEYWORD and p.default is p.empty
    ]
    try:
        hints = typing.get_type_hints(handler)
    except Exception:  # an annotation naming something not importable here: treat as untyped
        hints = {}
    payload = hints.get(parameters[1].name, inspect.Parameter.empty) if len(parameters) > 1 else None
    answer = hints.get("return", inspect.Parameter.empty)
    return HandlerTypes(
        takes_payload=len(parameters) > 1,
        payload=None if payload is None or payload in _RAW else payload,
        answer=None if answer in _RAW or answer is type(None) or answer is None else _awaited(answer),
    )


def _awaited(kind: Any) -> Any:
    """``Awaitable[T]`` / ``Coroutine[..., T]`` (an explicit annotation on a sync def) -> T."""
    origin = typing.get_origin(kind)
    if origin is not None and getattr(origin, "__name__", "") in ("Awaitable", "Coroutine"):
        return typing.get_args(kind)[-1]
    return kind


def structure(converter: cattrs.Converter, data: Any, kind: Any, event: str) -> Any:
    """``data`` as a ``kind``; :class:`InvalidPayload` naming each problem when it does not fit."""
    try:
        return converter.structure(data, kind)
    except BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path="$", format_exception=_describe)
    except (TypeError, ValueError, KeyError, cattrs.errors.CattrsError) as exc:
        problems = [f"{_describe(exc, kind)} @ $"]
    raise InvalidPayload(event, [_path_first(problem) for problem in problems])


def _describe(error: BaseException, kind: Any) -> str:
    if isinstance(error, PayloadTypeError | ValueError) and str(error):
        return str(error)  # ours, an attrs validator's, an Enum's: already says the rule
    if isinstance(error, ForbiddenExtraKeysError):
        return f"unknown fields: {', '.join(sorted(error.extra_fields))}"
    if isinstance(error, KeyError):
        return "required field missing"
    if typing.get_origin(kind) is typing.Literal:
        return f"expected one of {', '.join(map(repr, typing.get_args(kind)))}"
    return format_exception(error, kind)


def _path_first(problem: str) -> str:
    """cattrs says ``rule @ $.path``; people read ``$.path: rule``."""
    rule, _, path = problem.rpartition(" @ ")
    return f"{path}: {rule}" if rule else problem


def unstructure(converter: cattrs.Converter, value: Any, kind: Any = None) -> Any:
    """The JSON-ready form of ``value`` (attrs instances, dataclasses, enums... become JSON)."""
    return converter.unstructure(value, kind) if kind is not None else converter.unstructure(value)
