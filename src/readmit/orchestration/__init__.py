"""Running the pipeline graph (:mod:`readmit.pipeline`) under Airflow.

- :mod:`readmit.orchestration.tasks`: what an Airflow worker executes (a gate, a step) and the
  container command and environment of a step. No Airflow import.
- :mod:`readmit.orchestration.airflow_dags`: ``build_dag(graph_name)``, one task per step, with
  the operator chosen by the executor mode (``READMIT_EXECUTOR``: local, ecs, kubernetes or spark).
- :mod:`readmit.orchestration.containers`: the ECS and Kubernetes operators; their Airflow
  providers are imported only when that mode is chosen.
- :mod:`readmit.orchestration.spark_submit`: the medallion's layers as SparkSubmitOperators
  running :mod:`readmit.orchestration.spark_app` (the ``spark-submit`` application).
"""
