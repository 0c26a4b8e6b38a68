"""Pure parsers: text in, small frozen dataclasses out. No I/O here."""
