"""Sweeps: Optuna studies over any sweepable pipeline's parameters (docs/sweeps.md).

``python -m contrastive_signals.sweep run <name>`` (``make sweep SWEEP=<name>``)
runs sweep ``<name>`` of ``conf/*/parameters_sweep.yml``. Only :mod:`.spec` and :mod:`.figures`
are imported by the rest of the project (the parameter checks); :mod:`.runner` needs Optuna.
"""
