"""Pure parsers: text (or bytes) in, small frozen dataclasses out. No I/O here, never an
exception on malformed input they can skip; fuzzed with hypothesis."""
