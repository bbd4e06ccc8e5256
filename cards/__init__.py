"""Adaptive Card builders: pure functions from a view model to a card dict (Adaptive Cards 1.5, Teams' ceiling)."""

CARD_VERSION = "1.5"
MAX_CARD_BYTES = 28 * 1024  # Incoming-Webhook / Workflows limit, so any card can also be posted to a channel
