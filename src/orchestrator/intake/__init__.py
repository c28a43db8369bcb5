"""Work from GitHub: labelled issues become tasks (polled and from the webhook), the issue is told how its
task went, and news about pull requests is handed to whoever watches them."""
