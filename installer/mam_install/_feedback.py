"""The feedback port's console implementation: human text on stderr, a debug log on disk.

``--json`` documents go to stdout and are written by the command, not here; in JSON mode the
human text is still written to stderr (quieted to warnings) so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO


@dataclass
class ConsoleFeedback:
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    json_mode: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    log_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    _log_lines: list[str] = field(default_factory=list)

    def _emit(self, level: str, message: str, minimum: int) -> None:
        self._log_lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {level} {message}")
        if self.verbosity >= minimum:
            self.stream.write(f"{message}\n")
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

    def flush_log(self) -> Path | None:
        """Append this run's log to the debug log file; its path, or None if it is unwritable."""
        if self.log_path is None or not self._log_lines:
            return None
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write("\n".join(self._log_lines) + "\n")
        except OSError:
            return None
        self._log_lines.clear()
        return self.log_path
