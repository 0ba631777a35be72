"""The online source: what ``readmit serve`` answered, read from its audit records, beside the
batch months of a monitoring run.

The audit records (:mod:`readmit.registry.audit`) hold, per answered encounter, the model, the
risk, the band and the flag, with the encounter id as a salted hash; nothing else (no feature,
so no drift here: the drift is the batch months'). Per month of the requests: how many
encounters the monitored model answered, its risk distribution, bands and flag rate, and the A/B
arms; once an outcome is in gold's label store for an answered encounter (matched through the
same salted hash), the observed performance of those rows.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from readmit.data.layers import LABEL, LABEL_STORE
from readmit.jsonsafe import jsonable
from readmit.monitoring.performance import observed_performance
from readmit.monitoring.record import Observed, OnlineMonth, OnlineSource
from readmit.registry.audit import AUDIT_DIR, audit_salt, pseudonym, read_online
from readmit.storage import Storage


def online_source(registry: Any, datamart: Storage, months: list[str], algorithm: str,
                  version: str) -> OnlineSource:
    """The online predictions of ``algorithm`` v``version`` made in ``months``, summarised."""
    rows = read_online(registry, months)
    mine = rows.filter((pl.col("algorithm") == algorithm) & (pl.col("version") == version))
    labelled = _with_labels(registry, datamart, mine)
    by_month = [_month(m, mine.filter(pl.col("month") == m), labelled.filter(pl.col("month") == m))
                for m in sorted(set(mine["month"].to_list()))]
    return OnlineSource(
        location=registry.storage.uri_of(registry.rel(AUDIT_DIR)), rows=mine.height,
        requests=mine["request_id"].n_unique(), other_models_rows=rows.height - mine.height, months=by_month,
        labelled=labelled.height, observed=_observed(labelled),
    )


def _with_labels(registry: Any, datamart: Storage, rows: pl.DataFrame) -> pl.DataFrame:
    """The answered rows whose outcome is known (gold's label store), joined on the salted hash."""
    salt = audit_salt(registry, create=False)
    if rows.height == 0 or salt is None or not datamart.list_partitions(LABEL_STORE):
        return rows.with_columns(pl.lit(None, dtype=pl.Int8).alias(LABEL)).clear()
    labels = datamart.read_table(LABEL_STORE, columns=["encounter_id", LABEL]).filter(pl.col(LABEL).is_not_null())
    labels = labels.unique("encounter_id", maintain_order=True)
    hashed = labels.with_columns(pl.Series("encounter", [pseudonym(salt, "encounter", e)
                                                         for e in labels["encounter_id"]], dtype=pl.String))
    hashed = hashed.select("encounter", LABEL)
    # an encounter answered twice counts once, with its latest answer
    return rows.sort("at").unique("encounter", keep="last").join(hashed, on="encounter", how="inner")


def _observed(labelled: pl.DataFrame) -> Observed | None:
    if labelled.height == 0:
        return None
    return Observed.model_validate(jsonable(observed_performance(labelled[LABEL].to_numpy(),
                                                                 labelled["risk"].to_numpy())))


def _month(month: str, rows: pl.DataFrame, labelled: pl.DataFrame) -> OnlineMonth:
    risk = rows["risk"]
    return OnlineMonth(
        month=month, rows=rows.height, requests=rows["request_id"].n_unique(),
        risk_mean=risk.mean(), risk_p50=risk.quantile(0.5), risk_p90=risk.quantile(0.9),
        flag_rate=rows["flag"].cast(pl.Float64).mean(),
        bands=dict(sorted(rows["risk_band"].value_counts().iter_rows())),
        arms=dict(sorted(rows["arm"].value_counts().iter_rows())),
        labelled=labelled.height, observed=_observed(labelled),
    )
