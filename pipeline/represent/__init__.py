"""Representations of crystals as tensors for the generative models."""
