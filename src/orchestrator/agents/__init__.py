"""Running `claude` agents: command line, supervision, log pipeline, the manager."""
