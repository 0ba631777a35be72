"""Serving: the registered champion scores gold months in batch, with reason codes and A/B arms.

- :mod:`readmit.serving.predict` - ``readmit predict``: score months, write ``gold/model_predictions``.
- :mod:`readmit.serving.reasons` - the top three features behind each score.
- :mod:`readmit.serving.ab` - the stable patient -> arm assignment of an A/B test.
- :mod:`readmit.serving.gates` - the inference DAG's gates (a champion exists and verifies; gold exists).
"""
