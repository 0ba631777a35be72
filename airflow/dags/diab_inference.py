"""diab_inference: monthly batch scoring with the champion model, with reason codes and A/B arms.

Gates: a champion exists and verifies; the month's gold exists (otherwise skipped, not failed).
Default: the latest gold month; conf {"start_month": "YYYY-MM", "end_month": "YYYY-MM"} scores a
range. Then it triggers diab_monitoring on the months scored. Run diab_medallion and
diab_model_training first. The graph lives in readmit.pipeline.
"""

from readmit.orchestration.airflow_dags import build_dag

dag = build_dag("inference")
