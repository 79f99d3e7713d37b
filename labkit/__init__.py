"""labkit: learn, then run, message-based backends on NATS."""

__version__ = "0.1.0"
