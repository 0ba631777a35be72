"""diab_medallion: raw UCI encounters -> bronze -> silver -> gold, for a month range.

Trigger with conf {"start_month": "YYYY-MM", "end_month": "YYYY-MM"} to rebuild a range (default:
the config's data_config.date_derivation range). The graph lives in readmit.pipeline.
"""

from readmit.orchestration.airflow_dags import build_dag

dag = build_dag("medallion")
