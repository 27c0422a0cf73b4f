"""Generative models of crystals behind one interface (:mod:`pipeline.models.base`).

``python -m pipeline.stages.train --model NAME`` and ``python -m pipeline.stages.sample --model NAME``
look ``NAME`` up in :mod:`pipeline.models.registry`.
"""
