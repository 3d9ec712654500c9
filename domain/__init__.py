"""Business logic and models. No I/O, no clocks, no randomness unless injected."""
