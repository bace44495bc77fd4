"""Side-by-side benchmarks: this SDK vs raw aiohttp (the physical limit) vs the official SDK."""
