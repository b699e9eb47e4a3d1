"""Procedural demo data: scenes with known ground truth (no downloads, no Django)."""
