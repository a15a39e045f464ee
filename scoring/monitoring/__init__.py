"""What the service watches in the explanations it serves (no web code)."""
