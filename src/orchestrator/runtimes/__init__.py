"""Where agents run: one protocol, one implementation per place."""
