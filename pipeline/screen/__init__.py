"""Screening stage: validation, relaxation, hull, property predictions, Pourbaix stability."""
