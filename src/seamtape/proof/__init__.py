"""The proof: injected-fault worlds with known root causes, and the validate and bench
reports that score blame against them."""
