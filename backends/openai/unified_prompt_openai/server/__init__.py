"""`unified-prompt serve`: an OpenAI-compatible HTTP server in front of a local backend.

routes/ hold the HTTP surface; everything else is plain Python the routes call: models
(the registry of served models), inference (chat and legacy completions from the backend's
raw-text primitives), files, jobs + training (real local fine-tuning), batches, auth,
and the traffic middleware (latency, rate limits, quota, injected faults). bodies and
uploads read what clients send within limits; persist keeps state across restarts.
"""
