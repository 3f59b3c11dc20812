"""collect-tui services layer."""
