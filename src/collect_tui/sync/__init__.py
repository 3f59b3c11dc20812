"""collect-tui sync layer."""
