"""nftwatch."""
