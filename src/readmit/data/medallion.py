"""Run the medallion layers in order for a month range: bronze -> silver -> gold.

Each layer reads the layer before it from the datamart, so any layer can be rerun alone
(``readmit medallion --layer silver --start 2003-01 --end 2003-06``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from readmit.config import Settings
from readmit.data.engines import ENGINES
from readmit.data.layers import LAYERS, LayerResult
from readmit.errors import ReadmitInputError
from readmit.months import check_month_range
from readmit.storage import Storage

# progress(layer, event, value): event "start" (value = None), "partition" (value = month) or
# "done" (value = None; every partition of the layer was reported).
LayerProgress = Callable[[str, str, str | None], None]


def resolve_layers(layer: str) -> tuple[str, ...]:
    if layer == "all":
        return LAYERS
    if layer not in LAYERS:
        raise ReadmitInputError(
            f"unknown layer {layer!r}", fix=f"use one of: {', '.join(LAYERS)}, all"
        )
    return (layer,)


def run_medallion(
    settings: Settings,
    *,
    layers: Sequence[str] = LAYERS,
    start_month: str | None = None,
    end_month: str | None = None,
    quarantine: bool | None = None,
    cascade: bool = True,
    engine: str | None = None,
    diagnosis_codes: str | None = None,
    require_labels: bool | None = None,
    raw_paths: Sequence[str] | None = None,
    no_replace: bool = False,
    progress: LayerProgress | None = None,
) -> list[LayerResult]:
    """Build the chosen layers for months in [start_month, end_month] (inclusive; None = open).

    ``quarantine`` (default: ``data_config.quarantine``) sets aside bad raw rows with their reason
    instead of refusing the file. ``cascade`` (default) lets gold rebuild the later gold months
    whose patient history came from silver that changed; ``cascade=False`` refuses instead
    (``ReadmitInputError`` naming the months) and writes no gold. ``engine`` (default:
    ``data_config.engine``) runs silver and gold on polars, duckdb or spark (same results).
    ``diagnosis_codes`` (default: ``data_config.diagnosis_codes``): the raw file's code system;
    ``require_labels`` (default: ``data_config.require_labels``): a blank readmitted is a bad row.

    ``raw_paths`` (default: the one ``settings.raw_path``): the extracts, oldest first; each one's
    rows replace those of the same encounters in bronze (the newer wins), or with ``no_replace``
    such a conflict is refused before anything is written (:mod:`readmit.data.extracts`). When bronze
    runs, silver and gold rebuild only the months it changed (and gold the later months whose
    history changed), not every month.
    """
    from readmit.data.bronze import build_extracts
    from readmit.data.fetch import resolve_raw
    from readmit.data.gold import build_gold
    from readmit.data.silver import build_silver

    start_month, end_month = check_month_range(start_month, end_month)
    storage = Storage(settings.datamart_uri)
    data_cfg = settings.config.data_config
    if engine is not None:
        if engine not in ENGINES:
            raise ReadmitInputError(f"unknown engine {engine!r}", fix=f"use one of: {', '.join(ENGINES)}")
        data_cfg = data_cfg.model_copy(update={"engine": engine})
    results: list[LayerResult] = []
    changed: list[str] | None = None  # the months bronze changed: all silver and gold rebuild
    for layer in LAYERS:
        if layer not in layers:
            continue

        def on_partition(month: str, _layer: str = layer) -> None:
            if progress:
                progress(_layer, "partition", month)

        if progress:
            progress(layer, "start", None)
        if layer == "bronze":
            result = build_extracts(
                storage,
                [resolve_raw(p) for p in raw_paths] if raw_paths else [resolve_raw(settings.raw_path)],
                no_replace=no_replace,
                start_month=start_month,
                end_month=end_month,
                derivation=data_cfg.date_derivation.method,
                start_date=data_cfg.date_derivation.start_date,
                end_date=data_cfg.date_derivation.end_date,
                quarantine=data_cfg.quarantine if quarantine is None else quarantine,
                on_partition=on_partition,
                diagnosis_codes=data_cfg.diagnosis_codes if diagnosis_codes is None else diagnosis_codes,
                require_labels=data_cfg.require_labels if require_labels is None else require_labels,
            )
            changed = result.partitions or None
        elif layer == "silver":
            result = build_silver(storage, start_month=start_month, end_month=end_month, months=changed,
                                  on_partition=on_partition, data_config=data_cfg)
        else:
            result = build_gold(storage, start_month=start_month, end_month=end_month, months=changed,
                                cascade=cascade, on_partition=on_partition, data_config=data_cfg)
        results.append(result)
        if progress:
            progress(layer, "done", None)
    return results
