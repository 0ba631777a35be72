"""Training: temporal split of the gold tables, tuned models, evaluation, metadata.

Importing this package is light (no scikit-learn, no xgboost): the heavy libraries load when a
function runs. Public entry points:

- :func:`fit_algorithm` - train and evaluate one algorithm; returns the model and its metadata
  (registering it, with its reference profile and model card, is
  :func:`readmit.pipeline.register.train_algorithm`: those belong to floors above this one).
- :func:`predict_proba` - calibrated P(readmitted < 30 days) from a saved model and a gold feature frame.
- :func:`fitted_pipelines` - the fitted ``frame + prep + model`` pipeline inside a saved model
  (the calibrated model's one, or the model itself), for feature importances and reasons.
"""

from readmit.training.train import (
    MODEL_INPUT,
    fit_algorithm,
    fitted_pipelines,
    predict_proba,
)

__all__ = ["MODEL_INPUT", "fit_algorithm", "fitted_pipelines", "predict_proba"]
