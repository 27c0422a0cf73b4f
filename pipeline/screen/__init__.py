"""Screening of generated crystals: validity, deduplication, relaxation and the hull.

The modules each do one job; the stage CLIs (``pipeline.validate``, ``pipeline.relax``,
``pipeline.hull``) put them together.
"""
