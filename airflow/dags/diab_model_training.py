"""diab_model_training: gates, one training task per configured algorithm, comparison, promotion.

Run diab_medallion first. The graph lives in readmit.pipeline.
"""

from readmit.orchestration.airflow_dags import build_dag

dag = build_dag("training")
