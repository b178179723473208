"""The backend's client side: one module per concern (transport, retries, rate limits,
cache, accounting, scoring, generation, fine-tuning jobs, batches)."""
