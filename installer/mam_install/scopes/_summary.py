"""A plan's file decisions in groups (written, replaced, adopted, ...), shared by both scopes."""

from __future__ import annotations

from ..actions._file_actions import KeepFile, ReplaceFile, WriteFile
from ..engine._action import Action
from ..release._manifest import NEW_SUFFIX

SUMMARY_GROUPS = ("write", "replace", "adopt", "beside", "remove", "keep", "unchanged")


def summarize(actions: list[Action]) -> dict[str, list[str]]:
    """Each file decision of a plan in exactly one group, so the counts add up to the plan:
    written, replaced, adopted, kept beside as `.mam-new`, removed, left alone, unchanged."""
    groups: dict[str, list[str]] = {name: [] for name in SUMMARY_GROUPS}
    for action in actions:
        if isinstance(action, WriteFile):
            key = "beside" if action.path.endswith(NEW_SUFFIX) else "write"
            groups[key].append(action.path)
        elif isinstance(action, ReplaceFile):
            if action.path.endswith(NEW_SUFFIX):
                groups["beside"].append(action.path)
            else:
                groups["adopt" if action.adopted else "replace"].append(action.path)
        elif action.tag == "remove_file":
            groups["remove"].append(getattr(action, "path", ""))
        elif isinstance(action, KeepFile) and action.reason not in ("up-to-date", "pending"):
            if action.new_path is None and action.reason != "adopted":
                groups["keep"].append(action.path)
            elif action.reason == "adopted":
                groups["adopt"].append(action.path)
        elif isinstance(action, KeepFile) and action.reason == "up-to-date":
            groups["unchanged"].append(action.path)
    return groups


def summary_line(groups: dict[str, list[str]]) -> str:
    return (
        f"{len(groups['write'])} written, {len(groups['replace'])} replaced, "
        f"{len(groups['adopt'])} adopted, {len(groups['remove'])} removed, "
        f"{len(groups['beside'])} kept beside yours as {NEW_SUFFIX}, "
        f"{len(groups['keep'])} left alone, {len(groups['unchanged'])} unchanged"
    )
