"""Training: temporal split of the gold tables, tuned models, evaluation, registration.

Importing this package is light (no scikit-learn, no xgboost): the heavy libraries load when a
function runs. Public entry points:

- :func:`train_algorithm` - train, evaluate and register one algorithm; returns its metadata.
- :func:`predict_proba` - calibrated P(readmitted < 30 days) from a saved model and a gold feature frame.
- :func:`fitted_pipelines` - the fitted ``frame + prep + model`` pipeline inside a saved model
  (the calibrated model's one, or the model itself), for feature importances and reasons.
"""

from readmit.training.train import (
    MODEL_INPUT,
    fitted_pipelines,
    predict_proba,
    train_algorithm,
)

__all__ = ["MODEL_INPUT", "fitted_pipelines", "predict_proba", "train_algorithm"]
