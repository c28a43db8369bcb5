"""The event-driven multi-agent workflow: plan → code → review → deploy → verify."""
