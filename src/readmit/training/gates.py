"""The gates that must pass before training: config, gold present, enough data, no temporal leakage,
one raw source.

Each gate takes the :class:`~readmit.config.Settings` and returns a :class:`~readmit.checks.CheckResult`; a failed
gate's ``reason`` says what is wrong and how to fix it. :data:`GATES` lists them in the order they
run; :func:`run_checks` runs all of them.

Only an expected finding fails a gate: missing data, a bad config, too few partitions, leakage,
or storage that cannot be reached or read (a :class:`~readmit.errors.ReadmitError` or an
``OSError``) becomes a failed result naming the error and the fix (Airflow skips what follows;
``readmit check`` exits 1). Anything else raised inside a gate is a bug and propagates: the Airflow
task fails instead of being skipped, and the CLI exits 1 with the error.

Light on purpose (polars only at import): Airflow imports this module to parse DAGs.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Any

import polars as pl

from readmit.checks import CheckResult
from readmit.config import Settings, load_config, resolve_windows, window_problems
from readmit.data.features import DEATH_OR_HOSPICE, death_or_hospice
from readmit.data.layers import FEATURE_STORE, LABEL_STORE
from readmit.errors import ConfigError, ReadmitError
from readmit.storage import Storage
from readmit.training.split import WINDOWS, months_of, purge_expr, window_expr

_MEDALLION_FIX = "build the gold tables (`readmit medallion`), or point --datamart / READMIT_DATAMART_URI at the datamart that has them"


def _expected_findings(name: str):
    """Turn the expected failures of a gate (bad input, unreachable storage) into a failed result.

    Every other exception is a bug in readmit and is raised unchanged.
    """

    def wrap(gate):
        @functools.wraps(gate)
        def run(settings: Settings, *args: Any, **kwargs: Any) -> CheckResult:
            try:
                return gate(settings, *args, **kwargs)
            except ReadmitError as exc:
                return CheckResult(name, False, " ".join(str(exc).split()), {"error": type(exc).__name__})
            except OSError as exc:  # storage unreachable or unreadable
                return CheckResult(
                    name, False,
                    f"the check could not read its data ({type(exc).__name__}: {exc}). Fix: make sure the "
                    f"datamart {settings.datamart_uri} is reachable and readable, then rerun `readmit check`",
                    {"error": type(exc).__name__},
                )

        return run

    return wrap


def _window_months(settings: Settings) -> dict[str, list[str]]:
    splits = settings.config.temporal_splits
    return {w: months_of(getattr(splits, w)) for w in WINDOWS}


def _window_of(settings: Settings) -> pl.Expr:
    return window_expr(settings.config.temporal_splits)


# -- 1. the configuration ----------------------------------------------------------------------


@_expected_findings("model_config")
def check_model_config(settings: Settings) -> CheckResult:
    """Re-validate the config file (every problem listed) and the configured search spaces."""
    name = "model_config"
    source = settings.config_uri or "(built-in defaults)"
    cfg = settings.config
    problems: list[str] = []
    if settings.config_uri:
        try:
            cfg = load_config(settings.config_uri)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except ReadmitError as exc:
            return CheckResult(name, False, str(exc), {"config_uri": settings.config_uri})
    if not problems:
        from readmit.training.algorithms import search_space_problems

        problems.extend(search_space_problems(cfg.training_config))
    if problems:
        listing = "; ".join(problems)
        return CheckResult(
            name, False,
            f"{source}: {len(problems)} problem(s): {listing}. Fix: correct these fields in the config "
            "(`readmit config validate` lists them; `readmit config schema` shows what is allowed)",
            {"config_uri": settings.config_uri, "problems": problems},
        )
    return CheckResult(
        name, True, f"{source} is valid",
        {"config_uri": settings.config_uri, "algorithms": list(cfg.training_config.algorithms)},
    )


# -- 2. gold exists ----------------------------------------------------------------------------


@_expected_findings("gold_data_exists")
def check_gold_data_exists(settings: Settings) -> CheckResult:
    """Both gold tables have partitions, for the same months."""
    name = "gold_data_exists"
    storage = Storage(settings.datamart_uri)
    feats, labels = storage.list_partitions(FEATURE_STORE), storage.list_partitions(LABEL_STORE)
    details = {
        "datamart_uri": settings.datamart_uri,
        FEATURE_STORE: {"partitions": len(feats), "first": feats[0] if feats else None, "last": feats[-1] if feats else None},
        LABEL_STORE: {"partitions": len(labels), "first": labels[0] if labels else None, "last": labels[-1] if labels else None},
    }
    empty = [t for t, ms in ((FEATURE_STORE, feats), (LABEL_STORE, labels)) if not ms]
    if empty:
        return CheckResult(
            name, False,
            f"no partitions in {', '.join(empty)} under {storage.uri_of('gold')}. Fix: {_MEDALLION_FIX}",
            details,
        )
    only_f, only_l = sorted(set(feats) - set(labels)), sorted(set(labels) - set(feats))
    if only_f or only_l:
        details.update({"months_without_labels": only_f, "months_without_features": only_l})
        odd = (only_f + only_l)
        return CheckResult(
            name, False,
            f"the gold tables disagree: {len(only_f)} month(s) have features but no labels, {len(only_l)} "
            f"labels but no features (e.g. {', '.join(odd[:3])}). Fix: rebuild gold for those months "
            f"(`readmit medallion --layer gold --start {min(odd)} --end {max(odd)}`)",
            details,
        )
    return CheckResult(name, True, f"{len(feats)} monthly partitions in each gold table ({feats[0]} .. {feats[-1]})",
                       details)


# -- 3. enough data ----------------------------------------------------------------------------


def _labelled_rows(settings: Settings, storage: Storage) -> pl.DataFrame:
    """encounter_id, snapshot_date, label, window of the rows training uses (flags and purge applied)."""
    months = sorted({m for ms in _window_months(settings).values() for m in ms})
    lab_months = [m for m in storage.list_partitions(LABEL_STORE) if m in set(months)]
    feat_months = [m for m in storage.list_partitions(FEATURE_STORE) if m in set(months)]
    labels = storage.read_table(LABEL_STORE, lab_months, columns=["encounter_id", "snapshot_date", "label"])
    if labels.height == 0:
        return pl.DataFrame(schema={"encounter_id": pl.Int64, "snapshot_date": pl.Date, "label": pl.Int8,
                                    "window": pl.String})
    labels = labels.filter(pl.col("label").is_not_null())
    if settings.config.training_config.exclude_death_hospice and feat_months:
        feats = storage.read_table(FEATURE_STORE, feat_months, columns=["encounter_id", DEATH_OR_HOSPICE])
        dead = feats.filter(death_or_hospice())["encounter_id"]
        labels = labels.filter(~pl.col("encounter_id").is_in(dead.implode()))
    splits, maturity = settings.config.temporal_splits, settings.config.training_config.label_maturity_days
    labels = labels.with_columns(_window_of(settings).alias("window")).filter(pl.col("window").is_not_null())
    return labels.filter(~purge_expr(splits, maturity))  # as training sees them


def _unlabelled_by_window(settings: Settings, storage: Storage) -> dict[str, int]:
    """Feature-store rows of each window with no known outcome (blank readmitted): left out."""
    months = {m for ms in _window_months(settings).values() for m in ms}
    feat_months = [m for m in storage.list_partitions(FEATURE_STORE) if m in months]
    lab_months = [m for m in storage.list_partitions(LABEL_STORE) if m in months]
    out = dict.fromkeys(WINDOWS, 0)
    if not feat_months:
        return out
    feats = storage.read_table(FEATURE_STORE, feat_months, columns=["encounter_id", "snapshot_date"])
    if lab_months:
        known = storage.read_table(LABEL_STORE, lab_months, columns=["encounter_id"])["encounter_id"]
        feats = feats.filter(~pl.col("encounter_id").is_in(known.implode()))
    left = feats.with_columns(_window_of(settings).alias("window")).filter(pl.col("window").is_not_null())
    out.update(dict(left.group_by("window").len().iter_rows()))
    return out


@_expected_findings("sufficient_training_data")
def check_sufficient_training_data(settings: Settings) -> CheckResult:
    """Enough monthly partitions in the train window, and rows and positives in every window."""
    name = "sufficient_training_data"
    tc = settings.config.training_config
    storage = Storage(settings.datamart_uri)
    win_months = _window_months(settings)
    have = set(storage.list_partitions(FEATURE_STORE)) & set(storage.list_partitions(LABEL_STORE))
    train_parts = [m for m in win_months["train"] if m in have]
    rows = _labelled_rows(settings, storage)
    unlabelled = _unlabelled_by_window(settings, storage)
    counts = {}
    for w in WINDOWS:
        part = rows.filter(pl.col("window") == w)
        counts[w] = {"rows": part.height, "positives": int(part["label"].sum() or 0) if part.height else 0,
                     "partitions": sum(m in have for m in win_months[w]),
                     "unlabelled_left_out": unlabelled[w]}
    details = {
        "train_partitions": len(train_parts),
        "min_train_partitions": tc.min_train_partitions,
        "min_rows_per_window": tc.min_rows_per_window,
        "min_positives_per_window": tc.min_positives_per_window,
        "exclude_death_hospice": tc.exclude_death_hospice,
        "windows": counts,
    }
    splits = settings.config.temporal_splits
    problems = []
    if len(train_parts) < tc.min_train_partitions:
        problems.append(
            f"the train window ({splits.train.start_date} .. {splits.train.end_date}) has {len(train_parts)} "
            f"monthly gold partition(s), fewer than training_config.min_train_partitions={tc.min_train_partitions}"
        )
    for w in WINDOWS:
        c = counts[w]
        if c["rows"] < tc.min_rows_per_window:
            problems.append(f"the {w} window has {c['rows']} labelled rows, fewer than "
                            f"training_config.min_rows_per_window={tc.min_rows_per_window}")
        if c["positives"] < tc.min_positives_per_window:
            problems.append(f"the {w} window has {c['positives']} positive labels, fewer than "
                            f"training_config.min_positives_per_window={tc.min_positives_per_window}")
    if problems:
        return CheckResult(
            name, False,
            "; ".join(problems) + ". Fix: build gold for every month of the windows (`readmit medallion`), "
            "widen temporal_splits, or lower the training_config minimums",
            details,
        )
    summary = ", ".join(f"{w} {counts[w]['rows']} rows / {counts[w]['positives']} positives" for w in WINDOWS)
    return CheckResult(name, True, f"{len(train_parts)} train partitions; {summary}", details)


# -- 4. temporal leakage -----------------------------------------------------------------------


@_expected_findings("temporal_leakage")
def check_temporal_leakage(settings: Settings, as_of: date | None = None) -> CheckResult:
    """Windows ordered and disjoint, no row dated outside its place, labels mature by ``as_of``.

    Also reports (informational) the share of test and oot patients already seen in training.
    """
    name = "temporal_leakage"
    as_of = as_of or date.today()
    splits = settings.config.temporal_splits
    maturity = settings.config.training_config.label_maturity_days
    details: dict[str, Any] = {"as_of": as_of.isoformat(), "label_maturity_days": maturity}
    failed = _window_failure(name, splits, maturity, as_of, details)
    if failed is not None:
        return failed
    rows = _window_rows(settings)
    if rows is None:
        return CheckResult(name, False, f"no gold partitions inside the windows to check. Fix: {_MEDALLION_FIX}",
                           details)
    feats, labels = rows
    data_problems = _data_problems(settings, feats, labels)
    overlap = _patient_overlap(feats)
    details["patient_overlap"] = overlap
    details["rows_checked"] = feats.height
    details["purged_by_label_horizon"] = _purged_counts(feats, splits, maturity)
    # informational: patients whose dates contradict their encounter order (history ignores such
    # pairs; see readmit.data.features)
    from readmit.data.features import date_order_contradictions

    details["date_order_contradictions"] = date_order_contradictions(feats)
    if data_problems:
        details["problems"] = data_problems
        return CheckResult(
            name, False,
            "; ".join(data_problems) + ". Fix: rebuild the affected months of gold from silver "
            "(`readmit medallion --layer gold`) so each row sits in its own month and window",
            details,
        )
    shares = ", ".join(
        f"{w} {overlap[w]['share_seen_in_train']:.1%}" for w in ("test", "oot") if overlap[w]["share_seen_in_train"] is not None
    )
    purged = details["purged_by_label_horizon"]
    return CheckResult(
        name, True,
        f"windows ordered and disjoint, {feats.height} rows each in their own month, labels mature by {as_of}; "
        f"left out because their {maturity}-day label horizon reaches the next window: train {purged['train']}, "
        f"test {purged['test']} rows; {details['date_order_contradictions']} patient(s) with dates contradicting "
        "their encounter order"
        + (f"; patients already seen in training (informational): {shares}" if shares else ""),
        details,
    )


def _window_failure(name: str, splits: Any, maturity: int, as_of: date, details: dict[str, Any]) -> CheckResult | None:
    """The failed result when the windows themselves leak (before any data is read), else None:
    out of order or overlapping, purged away entirely, or with labels not mature by ``as_of``."""
    problems = list(window_problems(splits))
    if problems:
        details["problems"] = problems
        return CheckResult(
            name, False,
            "; ".join(problems) + ". Fix: set temporal_splits so that train ends before test starts and "
            "test ends before oot starts",
            details,
        )
    swallowed = _purge_swallows(splits, maturity)
    if swallowed:
        details["problems"] = swallowed
        return CheckResult(
            name, False,
            "; ".join(swallowed) + f". Fix: make each window longer than training_config.label_maturity_days="
            f"{maturity} days, or leave a gap of that many days between windows",
            details,
        )
    # Label maturity: a 30-day readmission is only known 30 days after discharge.
    immature = []
    for w in WINDOWS:
        end = getattr(splits, w).end_date
        mature_on = end + timedelta(days=maturity)
        if mature_on > as_of:
            immature.append(f"{w} window ends {end}: its labels mature on {mature_on}, after the as-of date {as_of}")
    if immature:
        details["problems"] = immature
        latest_end = as_of - timedelta(days=maturity)
        return CheckResult(
            name, False,
            "; ".join(immature) + f". Fix: end every window on or before {latest_end} "
            f"(as-of date minus training_config.label_maturity_days={maturity}), or wait until the labels mature",
            details,
        )
    return None


def _window_rows(settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """The windows' gold feature keys (with ``_partition`` and ``window``) and label keys; None
    when the windows have no feature or no label partition."""
    storage = Storage(settings.datamart_uri)
    months = sorted({m for ms in _window_months(settings).values() for m in ms})
    feat_months = [m for m in storage.list_partitions(FEATURE_STORE) if m in set(months)]
    lab_months = [m for m in storage.list_partitions(LABEL_STORE) if m in set(months)]
    if not feat_months or not lab_months:
        return None
    frames = []
    for m in feat_months:
        part = storage.read_partition(FEATURE_STORE, m, columns=["encounter_id", "patient_nbr", "snapshot_date"])
        frames.append(part.with_columns(pl.lit(m).alias("_partition")))
    feats = pl.concat(frames, how="vertical_relaxed").with_columns(_window_of(settings).alias("window"))
    labels = storage.read_table(LABEL_STORE, lab_months, columns=["encounter_id", "snapshot_date"])
    return feats, labels


def _data_problems(settings: Settings, feats: pl.DataFrame, labels: pl.DataFrame) -> list[str]:
    """Rows out of place: in another month's partition, dated past the train window, in two
    windows, or dated differently from their label."""
    splits = settings.config.temporal_splits
    # (a) every row sits in the partition of its own month
    misfiled = feats.filter(pl.col("snapshot_date").dt.strftime("%Y-%m") != pl.col("_partition"))
    # (b) rows of a training-window partition dated inside test / oot (a month the train window
    # shares with test, when a window cuts through it, legitimately holds rows of both)
    win_months = _window_months(settings)
    train_only = set(win_months["train"]) - set(win_months["test"]) - set(win_months["oot"])
    late = feats.filter(pl.col("_partition").is_in(sorted(train_only))
                        & (pl.col("snapshot_date") >= splits.test.start_date))
    # (c) an encounter present in more than one window
    multi = (feats.filter(pl.col("window").is_not_null()).group_by("encounter_id")
             .agg(pl.col("window").n_unique().alias("n")).filter(pl.col("n") > 1))
    # (d) label dated differently from its features
    joined = feats.join(labels, on="encounter_id", how="inner", suffix="_label")
    redated = joined.filter(pl.col("snapshot_date") != pl.col("snapshot_date_label"))
    problems = []
    if misfiled.height:
        problems.append(f"{misfiled.height} feature row(s) are stored in a partition of another month "
                        f"(e.g. encounter {misfiled['encounter_id'][0]} dated {misfiled['snapshot_date'][0]} "
                        f"in {misfiled['_partition'][0]})")
    if late.height:
        problems.append(f"{late.height} row(s) of training-window partitions are dated inside test/oot "
                        f"(from {splits.test.start_date})")
    if multi.height:
        problems.append(f"{multi.height} encounter_id(s) appear in more than one window")
    if redated.height:
        problems.append(f"{redated.height} label row(s) carry a snapshot_date different from their features")
    return problems


def _patient_overlap(feats: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Informational: per test / oot window, its patients and how many were already seen in training."""
    in_window = feats.filter(pl.col("window").is_not_null())
    train_patients = in_window.filter(pl.col("window") == "train")["patient_nbr"].unique()
    overlap = {}
    for w in ("test", "oot"):
        pats = in_window.filter(pl.col("window") == w)["patient_nbr"].unique()
        seen = int(pats.is_in(train_patients.implode()).sum()) if pats.len() else 0
        overlap[w] = {"patients": int(pats.len()), "seen_in_train": seen,
                      "share_seen_in_train": round(seen / pats.len(), 4) if pats.len() else None}
    return overlap


def _purge_swallows(splits: Any, maturity: int) -> list[str]:
    """A window every row of which would be purged: its label horizon always reaches the next one."""
    problems = []
    for window, following in (("train", "test"), ("test", "oot")):
        w, nxt = getattr(splits, window), getattr(splits, following)
        if w.start_date + timedelta(days=maturity) >= nxt.start_date:
            problems.append(
                f"every {window} row's {maturity}-day label horizon reaches the {following} window "
                f"({window} starts {w.start_date}, {following} starts {nxt.start_date}): the {window} window "
                "would overlap the next one, and purging it would leave nothing"
            )
    return problems


def _purged_counts(feats: pl.DataFrame, splits: Any, maturity: int) -> dict[str, int]:
    counts = feats.filter(purge_expr(splits, maturity)).group_by("window").len()
    out = {w: 0 for w in WINDOWS}
    out.update(dict(zip(counts["window"].to_list(), counts["len"].to_list(), strict=True)))
    return out


# -- 5. one raw source --------------------------------------------------------------------------


@_expected_findings("single_source")
def check_single_source(settings: Settings) -> CheckResult:
    """The windows' gold months hold one version of the data: one raw file, or consecutive extracts.

    Months built from two different raw files pass every other gate when their encounter ids do
    not overlap, yet the model would learn from one extract and be judged on another. Extracts
    applied one after the other by ``readmit medallion`` (the ledger, :mod:`readmit.data.extracts`)
    are versions of one source and pass: bronze keeps the newest row of each encounter. What fails
    is a mix of versions: months from a file the ledger does not know beside another file's, or a
    month an extract's file holds that the windows still take from an earlier version (the
    extract was applied to fewer months, ``--start/--end``, and nothing newer covered them). A mix
    fails the gate, or only warns with ``data_config.mixed_sources: "warn"``.
    """
    from readmit.data.extracts import read_ledger
    from readmit.data.gold import SOURCE_COLUMN

    name = "single_source"
    policy = settings.config.data_config.mixed_sources
    storage = Storage(settings.datamart_uri)
    win_months = _window_months(settings)
    wanted = {m for ms in win_months.values() for m in ms}
    months = [m for m in storage.list_partitions(LABEL_STORE) if m in wanted]
    if not months:
        return CheckResult(name, False, f"no gold partitions inside the windows to check. Fix: {_MEDALLION_FIX}",
                           {"policy": policy})
    sources: dict[str, list[str]] = {}  # sha256 -> months
    unrecorded: list[str] = []
    for month in months:
        part = storage.read_partition(LABEL_STORE, month)
        found = part[SOURCE_COLUMN].drop_nulls().unique().sort().to_list() if SOURCE_COLUMN in part.columns else []
        if not found:
            unrecorded.append(month)
        for sha in found:
            sources.setdefault(sha, []).append(month)
    details: dict[str, Any] = {
        "policy": policy, "months": len(months), "months_without_source": unrecorded,
        "sources": {sha: {"months": len(ms), "first": ms[0], "last": ms[-1]} for sha, ms in sources.items()},
    }
    reason = _mixed_sources_reason(sources, read_ledger(storage), months) if len(sources) > 1 else None
    if reason is not None:
        if policy == "fail":
            return CheckResult(name, False, reason, details)
        return CheckResult(name, True, f"warning: {reason}", {**details, "warning": True})
    note = (f"; {len(unrecorded)} month(s) record no source (gold built before sources were recorded: "
            f"rebuild them to check)") if unrecorded else ""
    only = next(iter(sources), None)
    if len(sources) > 1:
        summary = f"{len(months)} month(s) from {len(sources)} consecutive extracts of one source (bronze/_extracts.json)"
    else:
        summary = f"{len(months)} month(s) from one raw file (sha256 {only[:12]}…)" if only else f"{len(months)} month(s)"
    return CheckResult(name, True, summary + note, details)


def _mixed_sources_reason(sources: dict[str, list[str]], ledger: list[dict], months: list[str]) -> str | None:
    """Why the windows' sources are a mix of versions (None when they are consecutive extracts)."""
    known = {e["sha256"] for e in ledger}
    if any(sha not in known for sha in sources):
        listing = "; ".join(f"{sha[:12]}… in {len(ms)} month(s) {ms[0]}..{ms[-1]}" for sha, ms in sources.items())
        return (f"the windows' gold months come from {len(sources)} different raw files ({listing}). Fix: "
                "rebuild every month from one raw file (`readmit medallion --raw FILE` without --start/--end), "
                "or load each extract with `readmit medallion --raw FILE` (extracts it applied are one source), "
                "or set data_config.mixed_sources to \"warn\" if the mix is deliberate")
    window = set(months)
    for at, extract in enumerate(ledger):
        later = {m for e in ledger[at + 1:] for m in e["months_written"]}
        behind = sorted(window & set(extract["months_in_file"]) - set(extract["months_written"]) - later)
        if behind:
            return (f"the windows mix two versions of the same months: {extract['source']} "
                    f"({extract['sha256'][:12]}…) holds {len(behind)} month(s) {behind[0]}..{behind[-1]} that the "
                    "windows take from an earlier extract (it was applied to fewer months). Fix: apply it to "
                    "every month it holds (`readmit medallion --raw FILE` without --start/--end), or set "
                    "data_config.mixed_sources to \"warn\" if the mix is deliberate")
    return None


GATES = (check_model_config, check_gold_data_exists, check_sufficient_training_data, check_temporal_leakage,
         check_single_source)


def run_checks(settings: Settings, *, as_of: date | None = None) -> list[CheckResult]:
    """Run every gate in order (all of them, even after a failure) and return their results
    (relative windows resolved here, once, unless the settings already carry them)."""
    settings = resolve_windows(settings)
    return [gate(settings, as_of=as_of) if gate is check_temporal_leakage else gate(settings) for gate in GATES]


def invalid_config_results(error: Exception) -> list[CheckResult]:
    """The gates' results when the config itself does not load: the first fails, the rest do not run."""
    first, *rest = [gate.__name__.removeprefix("check_") for gate in GATES]
    return [CheckResult(first, False, " ".join(str(error).split()), {"problems": getattr(error, "problems", [])})] + [
        CheckResult(name, False, "not run: the config is invalid", {"skipped": True}) for name in rest
    ]
