"""Screening of generated crystals: validity, deduplication, relaxation, the hull, property
predictions and Pourbaix stability.

The modules each do one job; the stage CLIs (``pipeline.stages.validate``, ``.prescreen``,
``.relax``, ``.hull``, ``.properties``, ``.pourbaix``) put them together.
"""
