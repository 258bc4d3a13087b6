"""A release: its sources, download, staging, archive, manifest, sums, signatures, verification."""
