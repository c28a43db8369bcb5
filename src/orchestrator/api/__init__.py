"""HTTP: routers translate requests to service calls and service errors to answers."""
