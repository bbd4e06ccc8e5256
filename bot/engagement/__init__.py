"""Pure domain: decisions about people and messages. No I/O, no botbuilder, no aiohttp, no SQL sessions."""
