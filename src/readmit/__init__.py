"""readmit: 30-day readmission risk for diabetic patients, from raw encounters to a monitored model."""

__version__ = "0.1.0"
