"""nftvision."""
