"""HTTP serving of explained models (BentoML)."""
