"""Curriculum learning in whole networks trained end to end or layer-wise (the paper's Sec. V question):
the tables and reading (its figure is ``figures.strategy_exit_accuracies``).

``strategy_comparisons.strategy_table`` holds, per way of training (``STRATEGY_NAMES``) and method, each
exit's test accuracy and the paired differences. The comparisons are fixed in advance: curriculum against
vanilla at every trained exit, one family, Holm-corrected, and the final exit against the plain network's,
another family, Holm-corrected. Every sentence is built from those numbers with the rule and wording of
``statistics``: a test that does not pass is "not distinguishable" with that many repetitions, never "no
effect"; every difference carries its 95 % interval.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from mecl_utils.protocol.profiles import Profile
from mecl_utils.report.cells import difference_cell, mean_std
from mecl_utils.statistics import ALPHA, PairedDifference, difference_reading

__all__ = [
    "STRATEGY_NAMES",
    "exit_names",
    "format_strategy_table",
    "network_setting_table",
    "strategy_reading",
    "style_strategy_table",
    "tested_exits",
]

STRATEGY_NAMES = {
    "plain": "plain",
    "end_to_end_equal": "end to end, equal",
    "end_to_end_sdn": "end to end, SDN",
    "layer_wise": "layer-wise",
}


def network_setting_table(profile: Profile, networks: Profile) -> pd.DataFrame:
    """The whole-network runs' setting beside the profile's own (what the smaller setting changes)."""
    fields = {
        "training images": ("n_train", lambda v: "all" if v is None else f"{v:,}"),
        "epochs": ("backbone_epochs", str),
        "repetitions": ("repetitions", str),
        "input size": ("image_size", lambda v: "native" if v is None else f"{v} px"),
    }
    return pd.DataFrame(
        {
            f"{profile.name} profile (backbone, branches)": {
                k: f(getattr(profile, a)) for k, (a, f) in fields.items()
            },
            "whole-network runs": {k: f(getattr(networks, a)) for k, (a, f) in fields.items()},
        }
    )


def exit_names(table: pd.DataFrame) -> list[str]:
    return [c.removesuffix(" mean") for c in table.columns if c.endswith(" mean")]


def format_strategy_table(table: pd.DataFrame) -> pd.DataFrame:
    """``strategy_comparisons.strategy_table`` as strings: each exit's mean ± std, beside curriculum's
    curriculum minus vanilla with its 95 % interval and Holm-corrected p; ``final vs plain`` likewise."""
    out = []
    for _, row in table.iterrows():
        entry = {"strategy": STRATEGY_NAMES.get(row["strategy"], row["strategy"]), "method": row["method"]}
        for name in exit_names(table):
            text = mean_std(row[f"{name} mean"], row[f"{name} std"])
            tested = not pd.isna(row.get(f"{name} difference", np.nan))
            entry[name] = (
                f"{text} ({difference_cell(row, f'{name} {{}}', corrected=True)})" if tested else text
            )
        entry["final vs plain"] = (
            "–"  # the reference itself
            if row["strategy"] == "plain"
            else difference_cell(row, "final vs plain {}", "final vs plain", corrected=True)
        )
        entry["repetitions"] = int(row["repetitions"])
        out.append(entry)
    return pd.DataFrame(out)


def style_strategy_table(table: pd.DataFrame):
    """``format_strategy_table`` for a page: a pandas Styler indexed by strategy and method, each comparison
    in small type under its mean; unlike a DataFrame's own HTML, it never cuts a long cell short."""
    text = format_strategy_table(table).set_index(["strategy", "method"]).astype(str).map(html.escape)
    folded = text.apply(
        lambda column: column.str.replace(r" \((.*)\)$", r"<br><small>\1</small>", regex=True)
    )
    compact = [
        {"selector": "td, th", "props": "font-size: 0.85em; padding: 0.2em 0.4em; text-align: left;"},
        {"selector": "td", "props": "vertical-align: top;"},
    ]
    return folded.style.set_table_styles(compact)


def strategy_reading(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    """Per strategy: curriculum against vanilla at every exit; the final exit against the plain network's.

    Every difference with its interval; the p-values read are the table's Holm-corrected ones.
    """
    exits = exit_names(table)
    sentences, tests = [], 0
    for strategy, group in table.groupby("strategy", sort=False):
        by_method = group.set_index("method")
        if not {"vanilla", "curriculum"} <= set(by_method.index):
            continue
        vanilla, curriculum = by_method.loc["vanilla"], by_method.loc["curriculum"]
        parts = []
        for name in tested_exits(strategy, exits):
            difference = PairedDifference.from_row(curriculum, f"{name} {{}}")
            corrected = curriculum[f"{name} p adjusted"]
            parts.append(f"At {name}: {difference_reading(difference, corrected, alpha, corrected=True)}.")
            tests += not pd.isna(difference.p)
        sentence = (
            f"**{STRATEGY_NAMES.get(strategy, strategy)}**, curriculum minus vanilla. {' '.join(parts)}"
        )
        if strategy != "plain":
            final = [
                difference_reading(
                    PairedDifference.from_row(row, "final vs plain {}", "final vs plain"),
                    row["final vs plain p adjusted"],
                    alpha,
                    corrected=True,
                )
                for row in (vanilla, curriculum)
            ]
            sentence += (
                f" Its final exit minus the plain network's, with vanilla training: {final[0]}. With "
                f"curriculum: {final[1]}."
            )
        sentences.append(sentence)
    if sentences:
        trade_off = int(table["final vs plain p adjusted"].notna().sum())
        sentences.append(
            f"Curriculum's p-values are Holm-corrected across the {tests} exits compared in this table "
            "(every trained exit of every way of training: one family, as no exit was singled out in advance)"
            + (f"; the final-versus-plain ones across their {trade_off} comparisons" if trade_off else "")
            + ". Each interval is its own comparison's, uncorrected: one that excludes 0 while the corrected "
            "test does not pass is no finding."
        )
    return "\n\n".join(sentences)


def tested_exits(strategy: str, exits: list[str]) -> list[str]:
    """The exits whose curriculum-vanilla difference means something: the plain network's branches never
    train (their loss weight is 0), so only its final exit is compared."""
    return ["final"] if strategy == "plain" else list(exits)
