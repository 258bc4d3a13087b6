#!/usr/bin/env python3
"""Write manifests/<version>.json from payload/ (or, with --check, fail when it is stale)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from payload_archive import collect_payload, content_manifest, dumps, read_version

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed one differs")
    args = parser.parse_args()
    payload = ROOT / "payload"
    version = read_version(payload)
    expected = dumps(content_manifest(collect_payload(payload), version))
    target = ROOT / "manifests" / f"{version}.json"
    if args.check:
        if not target.is_file() or target.read_bytes() != expected:
            print(
                f"{target} is stale or missing: run `python3 scripts/manifest.py` and commit it",
                file=sys.stderr,
            )
            return 1
        return 0
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(expected)
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
