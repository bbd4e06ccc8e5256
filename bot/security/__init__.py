"""Inbound authentication and the allow-lists that guard what the bot accepts and where it sends its token."""
