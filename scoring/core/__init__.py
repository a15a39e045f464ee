"""The value types every layer shares: the explanation, plain values, saved state as data."""
