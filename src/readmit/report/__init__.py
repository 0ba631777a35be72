"""The report floor: one self-contained HTML page and a model card per registered version.

- :func:`build_report` - gather, score and write ``{registry_uri}/reports/readmit_report_*.html``.
- :func:`model_card` - a version's markdown card, written on first use.
- :func:`write_cards` - the cards of freshly registered versions (called after training).

Importing this package is light; matplotlib and scikit-learn load when a report is built.
"""

from readmit.report.build import build_report, model_card, write_cards

__all__ = ["build_report", "model_card", "write_cards"]
