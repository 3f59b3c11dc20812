"""collect-tui domain layer."""
