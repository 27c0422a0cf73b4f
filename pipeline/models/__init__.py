"""Generative models of crystals behind one interface (:mod:`pipeline.models.base`).

``python -m pipeline.train --model NAME`` and ``python -m pipeline.sample --model NAME``
look ``NAME`` up in :mod:`pipeline.models.registry`.
"""
