"""Screening of generated crystals: validity, deduplication, relaxation, the hull, property
predictions and Pourbaix stability.

The modules each do one job; the stage CLIs (``pipeline.validate``, ``pipeline.relax``,
``pipeline.hull``, ``pipeline.properties``, ``pipeline.pourbaix``) put them together.
"""
