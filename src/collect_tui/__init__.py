"""collect-tui: a keyboard-driven terminal workstation for debt collection."""

__version__ = "0.1.0"
