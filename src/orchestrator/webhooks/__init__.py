"""Webhook delivery: signed POSTs from the outbox, retried with backoff."""
