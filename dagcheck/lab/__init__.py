"""The lab: a simulated Exchange organisation that answers like the real one, over the real protocol."""
