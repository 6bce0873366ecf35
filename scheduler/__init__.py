"""Scheduled jobs and the durable outbox that delivers everything that is not an immediate reply."""
