"""Each training method written once, usable on every modality whose encoder fits it.

- :mod:`.two_view`: SimCLR (NT-Xent), SupCon and pair contrastive;
- :mod:`.triplet`: offline triplets and online mining (batch-hard, semi-hard, all);
- :mod:`.supervised`: classification by cross-entropy or the multi-class hinge loss;
- :mod:`.ts2vec`: TS2Vec's hierarchical contrastive objective on per-step encoders (its random
  streams in :mod:`._ts2vec_draws`);
- :mod:`.wav2vec`: wav2vec 2.0-style masked prediction over quantised frames;
- :mod:`.hvae`: the hierarchical VAE whose latents a triplet loss splits into signal and noise.

Around them: :mod:`.select` (a method chosen by name in parameters, checked against the
encoder), :mod:`.averaging` (the weight average as method state), :mod:`.train` (a method
trained in one call; triplet fine-tuning then a classifier head) and :mod:`.series` (any method
on series with TS2Vec's iteration budget; the series classifier).

See :mod:`.base` for the interface that :func:`~contrastive_signals.training.fit.fit` uses.
"""
