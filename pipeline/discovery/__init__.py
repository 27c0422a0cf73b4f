"""Discovery rounds: learn from what the screen confirmed, spend the samples where hits come from.

Round 1 is the pipeline's single pass; each later round (``discovery.rounds``) starts from what
the rounds before it confirmed (GNoME's generate, relax, verify, retrain loop: Merchant et al.,
Nature 624, 80 (2023)):

* :mod:`~pipeline.discovery.rounds`: what tells a round's samples apart (seed, ids);
* :mod:`~pipeline.discovery.confirmation`: which candidates of a round are confirmed, and the
  known set, training set and hulls of the next round that hold them;
* :mod:`~pipeline.discovery.bandit`: the split of a round's samples among the sources
  (Thompson sampling on their confirmed hits per sample, with a floor; or equal);
* :mod:`~pipeline.discovery.final`: every round's candidates on the final hull, the verdict
  recomputed;
* :mod:`~pipeline.discovery.curve`: confirmed structures against relaxations spent.
"""
