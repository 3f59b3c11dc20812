"""collect-tui storage layer."""
