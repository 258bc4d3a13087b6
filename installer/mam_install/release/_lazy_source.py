"""The release to install, staged and verified once, when a scope first needs its files."""

from __future__ import annotations

from collections.abc import Collection

from .._feedback import ConsoleFeedback
from ._manifest import SCOPES
from ._sources import SourceSpec, Staged, stage_source
from ._staging import Staging


class LazyStaged:
    """Stage and verify the source once, when something first needs its files.

    ``scopes`` are the scopes the run may place, decided before anything is staged: only their
    files are written to staging (every file is verified whatever they are)."""

    def __init__(
        self,
        source: SourceSpec,
        staging: Staging,
        feedback: ConsoleFeedback,
        scopes: Collection[str] = SCOPES,
    ) -> None:
        self.source, self.staging, self.feedback = source, staging, feedback
        self.scopes = frozenset(scopes)
        self._staged: Staged | None = None

    @classmethod
    def of(cls, staged: Staged, staging: Staging, feedback: ConsoleFeedback) -> LazyStaged:
        """A source already staged (tests, and callers that staged it themselves)."""
        source = cls(SourceSpec(), staging, feedback)
        source._staged = staged
        return source

    def get(self) -> Staged:
        if self._staged is None:
            self._staged = stage_source(self.source, self.staging, self.scopes)
            manifest = self._staged.payload.manifest
            self.feedback.detail(f"verified {len(manifest.files)} files of mam {manifest.version}")
            if self._staged.record.get("pinned") is False:
                self.feedback.warn(
                    f"{self.source.location} is not pinned to a commit: it resolved to "
                    f"{self._staged.record.get('commit')}, which the receipt records; pin that "
                    "commit to install the same thing again"
                )
        return self._staged
