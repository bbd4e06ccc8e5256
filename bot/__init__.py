"""Nurture: the Teams bot application (configuration, web host, Teams handler, CLI)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nurture")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
