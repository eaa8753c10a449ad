"""Persistence: one fit-state type, its npz file format and atomic writes."""
