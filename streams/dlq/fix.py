"""The fix file: declarative, data-only edits applied to a dead letter's event before republish.

A fix never executes code. It is a JSON object with up to three sections, ``fields`` (the
event's top-level fields), ``features`` and ``context``; each section may hold these edits,
applied in this order:

``rename``  ``{"old": "new"}``             move a value to a new name (absent: nothing to do)
``remove``  ``["name", ...]``              drop names (absent: nothing to do)
``map``     ``{"name": {"from": to}}``     replace listed values; a non-string value is
                                           matched by its JSON text, e.g. ``"3"`` or ``"true"``
``default`` ``{"name": value}``            set only where the name is absent
``set``     ``{"name": value}``            set always

Section names keep feature names with dots unambiguous (``features.rename`` of
``"loan.amount"`` is one feature).

>>> fix = Fix.parse(b'{"features": {"map": {"car": {"SEDAN": 3}}, "default": {"elevel": 0}}}')
>>> fix.apply(b'{"event_id": "e1", "features": {"car": "SEDAN"}}')
b'{"event_id":"e1","features":{"car":3,"elevel":0}}'
>>> fix.apply(b'{oops')
Traceback (most recent call last):
...
streams.dlq.fix.FixNotApplicable: the value is not JSON, so the fix cannot edit it
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from schemas.errors import FixFileError

__all__ = ["Fix", "FixNotApplicable", "SectionEdits"]


class FixNotApplicable(ValueError):
    """This record's value cannot take the fix (not a JSON object, or a section is not one)."""


class SectionEdits(BaseModel):
    """The edits of one section of an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rename: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)
    map: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    default: dict[str, JsonValue] = Field(default_factory=dict)
    set: dict[str, JsonValue] = Field(default_factory=dict)

    def apply(self, target: dict[str, Any]) -> None:
        for old, new in self.rename.items():
            if old in target:
                target[new] = target.pop(old)
        for name in self.remove:
            target.pop(name, None)
        for name, replacements in self.map.items():
            if name in target:
                text = _match_text(target[name])
                if text in replacements:
                    target[name] = replacements[text]
        for name, value in self.default.items():
            target.setdefault(name, value)
        target.update(self.set)

    def empty(self) -> bool:
        return not (self.rename or self.remove or self.map or self.default or self.set)


def _match_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class Fix(BaseModel):
    """Edits of an event's top-level fields, features and context (see module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: SectionEdits = Field(default_factory=SectionEdits)
    features: SectionEdits = Field(default_factory=SectionEdits)
    context: SectionEdits = Field(default_factory=SectionEdits)

    @classmethod
    def parse(cls, text: bytes | str, source: str = "fix file") -> Fix:
        """A fix from JSON text; :class:`FixFileError` names the first problem."""
        try:
            fix = cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the file"
            raise FixFileError(f"{source}: {where}: {first['msg']}") from exc
        if fix.fields.empty() and fix.features.empty() and fix.context.empty():
            raise FixFileError(f"{source}: the fix has no edits")
        return fix

    @classmethod
    def load(cls, path: Path) -> Fix:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise FixFileError(f"cannot read fix file {path}: {exc.strerror}") from exc
        return cls.parse(text, str(path))

    @property
    def digest(self) -> str:
        """sha256 of the fix's canonical JSON: republished records name the fix they got."""
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    def apply(self, value: bytes) -> bytes:
        """The edited value; raises :class:`FixNotApplicable` when it cannot be edited."""
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise FixNotApplicable("the value is not JSON, so the fix cannot edit it") from None
        if not isinstance(event, dict):
            raise FixNotApplicable("the value is not a JSON object, so the fix cannot edit it")
        self.fields.apply(event)
        for name in ("features", "context"):
            edits: SectionEdits = getattr(self, name)
            if edits.empty():
                continue
            section = event.setdefault(name, {})
            if not isinstance(section, dict):
                raise FixNotApplicable(f"'{name}' is {type(section).__name__}, not an object")
            edits.apply(section)
        return orjson.dumps(event)
