"""Optimizers (placeholder until the training stack lands)."""
