"""The unit of change: an Action, its states, and the registry that reads receipts back.

An action is a dataclass of JSON-safe fields with a stable ``tag``. Planners only inspect and
return actions with their initial state; ``describe_*`` are pure text; only ``execute`` and
``revert`` touch the system, and both are idempotent so that a killed run can be undone by
running them again. ``skipped`` means "present and not ours": it is never reverted.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, get_args, get_origin

from .._errors import ReceiptError
from .._runner import CommandRunner

State = Literal["uncompleted", "progress", "completed", "skipped"]
STATES: tuple[State, ...] = ("uncompleted", "progress", "completed", "skipped")


class Feedback(Protocol):
    """Where actions report what a user should know (a kept file, a manual step)."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def detail(self, message: str) -> None: ...


@dataclass
class Context:
    """Everything an action may touch, passed in: never a global path."""

    root: Path
    runner: CommandRunner
    feedback: Feedback
    sources: Mapping[str, Path] = field(default_factory=dict)
    backup_dir: Path | None = None
    # Where ``backup_dir`` is walked from without following a symlink (the scope's root).
    state_anchor: Path | None = None

    def source(self, key: str) -> Path:
        try:
            return self.sources[key]
        except KeyError:
            raise ReceiptError(f"no staged file for {key!r}; run the install again") from None


@dataclass
class Action:
    """Base of every action; subclasses are dataclasses that set ``tag``."""

    tag: ClassVar[str] = ""
    state: State = field(default="uncompleted", init=False)
    # Done by an earlier run and only carried forward: a rollback of this run leaves it alone.
    carried: bool = field(default=False, init=False)

    def describe_execute(self) -> str:
        raise NotImplementedError

    def describe_revert(self) -> str:
        raise NotImplementedError

    def execute(self, ctx: Context) -> None:
        raise NotImplementedError

    def revert(self, ctx: Context) -> None:
        raise NotImplementedError

    def check(self, ctx: Context) -> bool:
        """Is the change still as we left it?"""
        raise NotImplementedError

    def owned(self) -> tuple[str, str] | None:
        """(path, sha256) of a file this action leaves in our care once completed, if any."""
        return None

    def released(self) -> str | None:
        """The key (as ``owned()`` names it) of a file this action takes out of our care once
        completed (a removal), if any: what a partial uninstall's receipt stops claiming."""
        return None

    @property
    def needs_execute(self) -> bool:
        return self.state in ("uncompleted", "progress")

    def to_json(self) -> dict[str, Any]:
        # Every field is a JSON scalar: a shallow copy is enough (asdict's deep copy is not free,
        # and the receipt is rewritten after every state change).
        doc: dict[str, Any] = {"tag": self.tag}
        doc.update((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        return doc


_REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    """Class decorator: make ``cls`` readable from receipts by its tag (tags are never renamed)."""
    if not cls.tag or cls.tag in _REGISTRY:
        raise ValueError(f"action tag {cls.tag!r} is empty or taken")
    _REGISTRY[cls.tag] = cls
    return cls


def _accepts(annotation: str, namespace: Mapping[str, Any], value: object) -> bool:
    """Does ``value`` fit a field annotation of the forms actions use (``str | None``,
    ``list[str]``, ``int``, a ``Literal`` alias)? ``bool`` is not an ``int`` here."""
    for alternative in (part.strip() for part in annotation.split("|")):
        if alternative == "None" and value is None:
            return True
        if alternative == "bool" and isinstance(value, bool):
            return True
        if alternative == "str" and isinstance(value, str):
            return True
        if alternative == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if alternative == "float" and isinstance(value, (int, float)):
            return not isinstance(value, bool)
        if alternative == "list[str]" and isinstance(value, list):
            return all(isinstance(item, str) for item in value)
        alias = namespace.get(alternative)
        if alias is not None and get_origin(alias) is Literal and value in get_args(alias):
            return True
    return False


def action_from_json(doc: Mapping[str, Any], origin: str) -> Action:
    """Rebuild an action from a receipt entry: unknown tags or fields, and fields of the wrong
    type, are a ReceiptError (a receipt may come from anyone; see _receipt_check)."""
    if not isinstance(doc, Mapping):
        raise ReceiptError(f"{origin}: an action entry is not an object")
    tag = doc.get("tag")
    cls = _REGISTRY.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ReceiptError(
            f"{origin}: unknown action {tag!r}; it was written by a newer mam-install"
        )
    namespace = vars(sys.modules[cls.__module__])
    every_field = {f.name for f in dataclasses.fields(cls)}
    init_fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key, value in doc.items():
        if key == "tag" or (key in every_field and key not in init_fields):
            continue  # state and carried are checked below; other derived fields are not read
        spec = init_fields.get(key)
        if spec is None:
            raise ReceiptError(f"{origin}: {tag!r} action has an unknown field {key!r}")
        if not _accepts(str(spec.type), namespace, value):
            raise ReceiptError(
                f"{origin}: {tag!r} action field {key!r} is {str(value)[:80]!r}, not {spec.type}"
            )
    kwargs = {k: v for k, v in doc.items() if k in init_fields}
    try:
        action = cls(**kwargs)
    except TypeError as exc:
        raise ReceiptError(f"{origin}: malformed {tag!r} action ({exc})") from exc
    state = doc.get("state", "uncompleted")
    if state not in STATES:
        raise ReceiptError(f"{origin}: action {tag!r} has unknown state {state!r}")
    carried = doc.get("carried", False)
    if not isinstance(carried, bool):
        raise ReceiptError(f"{origin}: action {tag!r} field 'carried' is not a boolean")
    action.state = state
    action.carried = carried
    return action
