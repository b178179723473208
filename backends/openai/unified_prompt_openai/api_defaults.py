"""Choices the hosted fine-tuning API makes when a request leaves them to it ("auto"),
shared by the client's cost estimate and the local server, so the two cannot disagree."""

#: Epochs a job with n_epochs "auto" runs (what the hosted API usually picks for small files).
AUTO_EPOCHS = 3

#: What a fine-tuning job on `unified-prompt serve` may train locally (--train-method): a
#: weight method and a soft-prompt one, both cheap enough to run behind an API.
SERVE_TRAIN_METHODS = ("lora", "prompt_tuning")
