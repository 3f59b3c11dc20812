"""collect-tui widgets layer."""
