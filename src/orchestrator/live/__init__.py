"""What the dashboard follows live: the feed of changes to agents, tasks, the queue and events."""
