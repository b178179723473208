"""Prompts to tensors: token ids through the core's encoding module, then padded batches."""
