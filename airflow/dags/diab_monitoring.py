"""diab_monitoring: after inference, each month: drift, performance, keep / watch / retrain.

diab_inference's last task (trigger_monitoring) starts it on the months it scored.

Trigger with conf {"start_month": "YYYY-MM", "end_month": "YYYY-MM"} (default: the data's last
month). A retrain decision starts diab_model_training when monitoring_config.auto_retrain is set.
The graph lives in readmit.pipeline.
"""

from readmit.orchestration.airflow_dags import build_dag

dag = build_dag("monitoring")
