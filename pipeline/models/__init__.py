"""Generative models of crystals behind one interface (:mod:`pipeline.models.base`).

The train and sample stages (``--model NAME``) look ``NAME`` up in
:mod:`pipeline.models.registry`; a model that draws each structure from its own seed writes
only its batch step (:meth:`pipeline.models.base.GenerativeModel.sample_by_target`).
"""
