"""Each training method written once, usable on every modality whose encoder fits it.

- :mod:`.two_view`: SimCLR (NT-Xent), SupCon and pair contrastive;
- :mod:`.triplet`: offline triplets and online mining (batch-hard, semi-hard, all);
- :mod:`.supervised`: classification by cross-entropy or the multi-class hinge loss;
- :mod:`.ts2vec`: TS2Vec's hierarchical contrastive objective on per-step encoders;
- :mod:`.wav2vec`: wav2vec 2.0-style masked prediction over quantised frames;
- :mod:`.hvae`: the hierarchical VAE whose latents a triplet loss splits into signal and noise.

See :mod:`.base` for the interface that :func:`~contrastive_signals.training.fit.fit` uses.
"""
