"""Nurture: the Teams bot application (configuration, web host, Teams handler, CLI)."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`bot.__version__`, read from the installed package only when asked: every command imports this package,
    and reading package metadata costs more than a quick command's own work."""
    if name != "__version__":
        raise AttributeError(f"module 'bot' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nurture")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0"
