"""The Celery side: the app, its queues, thin idempotent tasks and the outbox dispatcher."""
