"""Pure domain: types, state machines and parsers. No I/O, imports nothing of ours but itself."""
