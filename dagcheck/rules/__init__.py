"""Pure evaluation logic that deserves its own unit tests; checks call these."""
