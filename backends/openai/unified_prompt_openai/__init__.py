"""unified-prompt-openai: the `openai` backend (any OpenAI-compatible host) and
`unified-prompt serve`, an OpenAI-compatible server in front of a local backend.

Importing this package imports nothing heavy: the SDK loads when a request is first made,
FastAPI when a server is created.
"""

__version__ = "0.1.0"
