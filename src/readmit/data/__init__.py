"""The medallion data pipeline: raw -> bronze -> silver -> gold (features and labels)."""
