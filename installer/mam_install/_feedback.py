"""The feedback port's console implementation: human text on stderr, a debug log on disk
(``_debug_log``).

``--json`` documents go to stdout and are written by the command, not here; in JSON mode the
human text is still written to stderr (quieted to warnings) so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO


@dataclass
class ConsoleFeedback:
    """The feedback port on a console: messages to ``stream`` by verbosity, all of them to the
    debug log when the run ends."""

    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    json_mode: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    warnings: list[str] = field(default_factory=list)
    _log_lines: list[str] = field(default_factory=list)

    def _emit(self, level: str, message: str, minimum: int) -> None:
        self._log_lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {level} {message}")
        if self.verbosity >= minimum:
            self.stream.write(printable(f"{message}\n", self.stream))
            self.stream.flush()

    def info(self, message: str) -> None:
        self._emit("INFO", message, 1 if self.json_mode else 0)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self._emit("WARN", f"warning: {message}", -1)

    def detail(self, message: str) -> None:
        self._emit("DEBUG", message, 1)

    def error(self, message: str) -> None:
        self._emit("ERROR", f"error: {message}", -99)

    def flush_log(self, argv: Sequence[str] = ()) -> Path | None:
        """Append this run's log to the debug log; its path, or None if it is unwritable."""
        if not self._log_lines:
            return None
        from ._debug_log import write_run

        path = write_run(self._log_lines, argv)
        if path is not None:
            self._log_lines.clear()
        return path


def printable(text: str, stream: TextIO) -> str:
    """``text`` as ``stream`` can encode it: a path with a byte that is not UTF-8 (held as a
    surrogate) is shown backslash-escaped instead of crashing the command."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        pass
    return text
