"""One module per training method: what it attaches to a model and how its weights are named.

Each `attach(model, spec, ...)` returns a derived handle and its bindings: canonical name
(backend.py's framework-neutral names) -> paddle parameter plus the layout change between
them. The session, checkpoints, adapters and conversion all go through the bindings.
"""
