"""The statistics of a listening test: shares with Wilson intervals (transfer_evaluation's), means with t
intervals, Fleiss' kappa, and the rules that exclude a listener."""

from __future__ import annotations

import math

import numpy as np

from ..transfer_evaluation import wilson_interval

HIDDEN_REFERENCE_FLOOR = 90  # ITU-R BS.1534-3, post-screening: the hidden reference rated below this ...
HIDDEN_REFERENCE_SHARE = 0.15  # ... in more than this share of a listener's trials excludes the listener
DUPLICATE_AGREEMENT = 0.5  # a listener who gives the same answer to fewer than half their hidden duplicates


def share(hits: int, items: int) -> dict:
    """hits / items with its 95 % Wilson interval (NaN where there are no items)."""
    low, high = wilson_interval(hits, items)
    return {"share": hits / items if items else math.nan, "hits": hits, "items": items, "interval": [low, high]}


def mean_interval(values) -> dict:
    """The mean of `values` with its 95 % interval from Student's t (NaN where it cannot be had: one value)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if not len(values):
        return {"mean": math.nan, "items": 0, "interval": [math.nan, math.nan]}
    mean = float(values.mean())
    if len(values) < 2:
        return {"mean": mean, "items": 1, "interval": [math.nan, math.nan]}
    half = float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return {"mean": mean, "items": len(values), "interval": [mean - half, mean + half]}


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa of an items x categories table of how many raters put each item in each category. Items with
    fewer than two ratings are left out; the number of raters may differ between items (each item's agreement is
    over its own raters' pairs). NaN where it is undefined: no item left, or every rating in one category."""
    counts = np.asarray(counts, dtype=float)
    raters = counts.sum(axis=1)
    counts, raters = counts[raters >= 2], raters[raters >= 2]
    if not len(counts):
        return math.nan
    agreement = ((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))).mean()
    proportions = counts.sum(axis=0) / raters.sum()
    expected = float((proportions ** 2).sum())
    if expected >= 1.0:
        return math.nan
    return float((agreement - expected) / (1.0 - expected))


def post_screening(hidden_reference_ratings) -> dict:
    """BS.1534-3's post-screening of one listener: the share of their trials whose hidden reference they rated
    below HIDDEN_REFERENCE_FLOOR, and whether that share excludes them."""
    ratings = np.asarray(hidden_reference_ratings, dtype=float)
    below = int((ratings < HIDDEN_REFERENCE_FLOOR).sum())
    fraction = below / len(ratings) if len(ratings) else math.nan
    return {"trials": len(ratings), "below": below, "share": fraction,
            "excluded": bool(len(ratings)) and fraction > HIDDEN_REFERENCE_SHARE}


def consistency(pairs: list[tuple[str, str]]) -> dict:
    """Of one listener's (first answer, answer to the hidden duplicate) pairs: how many agree, and whether too few
    do (under DUPLICATE_AGREEMENT) to keep the listener."""
    agree = sum(first == second for first, second in pairs)
    fraction = agree / len(pairs) if pairs else math.nan
    return {"duplicates": len(pairs), "agree": agree, "share": fraction,
            "excluded": bool(pairs) and fraction < DUPLICATE_AGREEMENT}
