"""Choices the hosted fine-tuning API makes when a request leaves them to it ("auto"),
shared by the client's cost estimate and the local server, so the two cannot disagree."""

#: Epochs a job with n_epochs "auto" runs (what the hosted API usually picks for small files).
AUTO_EPOCHS = 3
