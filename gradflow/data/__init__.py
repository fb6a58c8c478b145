"""Datasets and loaders (placeholder until the training stack lands)."""
