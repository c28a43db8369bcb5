"""The task queue: what waits, what runs, and the loop that starts work the moment a slot frees."""
