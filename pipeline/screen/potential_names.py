"""The names of the screen's universal ML potentials, as ``screen.potential`` spells them.

Kept apart from :mod:`pipeline.screen.potentials` so that stages which only read tables
(evaluate, report) need not import torch and the potentials' packages.
"""

POTENTIALS = ("chgnet", "sevennet", "m3gnet")
