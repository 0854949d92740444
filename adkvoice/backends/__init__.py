"""Backends turn what they talk to into the normalized events of `adkvoice.events`."""

from adkvoice.backends.base import Backend

__all__ = ["Backend"]
