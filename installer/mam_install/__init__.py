"""mam-install: the installer and release-integrity toolkit for multi-agent-mux."""

__version__ = "0.1.0"

__all__ = ["__version__"]
