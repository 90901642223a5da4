"""Reports people read: results as data (JSON, history), a verdict-first static summary, trends."""
