"""Monitoring: is the served model still right? Drift, performance with late labels, a decision.

- :mod:`~readmit.monitoring.profile` - the reference profile of a model version (score and
  feature bins on its training window), stored beside the model.
- :mod:`~readmit.monitoring.drift` - PSI of the score, CSI per feature, missing and
  new-category rates per month, in Polars.
- :mod:`~readmit.monitoring.performance` - observed metrics on months whose labels are mature,
  estimated ones (from calibrated probabilities alone) on months whose labels are not.
- :mod:`~readmit.monitoring.decisions` - keep / watch / retrain, with the reasons.
- :mod:`~readmit.monitoring.monitor` - one monitoring run: read, compute, write the record.
- :mod:`~readmit.monitoring.ab` - the champion / challenger A/B report.

Importing this package is light: the modules import polars and numpy only.
"""
