"""collect-tui screens layer."""
