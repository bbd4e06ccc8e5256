"""Adaptive Card builders: pure functions from a view model to a card dict (Adaptive Cards 1.5, Teams' ceiling)."""

# Cards carry no `lang`: the official JS renderer (adaptivecards 3.0.x) validates it with a global regex whose
# lastIndex leaks between calls and warns on every other valid value; strings are localized server-side anyway.
CARD_VERSION = "1.5"
MAX_CARD_BYTES = 28 * 1024  # Incoming-Webhook / Workflows limit, so any card can also be posted to a channel
