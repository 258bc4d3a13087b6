"""A tiny line editor to run in a tmux pane: asks for bracketed paste, can ignore Enter presses.

usage: fake_tui.py LOG IGNORED_ENTERS   (IGNORED_ENTERS -1: never submit)

Each submitted input is appended to LOG as one JSON string per line; every byte received is
appended to LOG.raw, so tests can see the bracketed-paste markers tmux sent.
"""

from __future__ import annotations

import json
import os
import sys
import tty

PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"


def main() -> None:
    log, ignored = sys.argv[1], int(sys.argv[2])
    tty.setraw(0)
    os.write(1, b"\x1b[?2004h> ")
    pending = b""
    line = b""
    in_paste = False
    with open(log + ".raw", "ab") as raw, open(log, "a", encoding="utf-8") as submitted:
        while True:
            data = os.read(0, 4096)
            if not data:
                return
            raw.write(data)
            raw.flush()
            pending += data
            while pending:
                if pending.startswith(PASTE_START):
                    in_paste, pending = True, pending[len(PASTE_START) :]
                    continue
                if pending.startswith(PASTE_END):
                    in_paste, pending = False, pending[len(PASTE_END) :]
                    continue
                if pending.startswith(b"\x1b") and len(pending) < len(PASTE_START):
                    break  # the rest of a marker is still on its way
                byte, pending = pending[:1], pending[1:]
                if byte in (b"\r", b"\n") and in_paste:
                    line += b"\n"
                    os.write(1, b"\r\n")
                elif byte == b"\r":
                    if ignored != 0:
                        ignored -= 1 if ignored > 0 else 0
                        continue
                    submitted.write(json.dumps(line.decode("utf-8", "replace")) + "\n")
                    submitted.flush()
                    line = b""
                    os.write(1, b"\r\n> ")
                else:
                    line += byte
                    os.write(1, byte)


if __name__ == "__main__":
    main()
