"""Tables, figures and readings of the strategy experiments (the paper's Sec. V questions, ``strategy_runs``).

Every sentence here is built from computed results, with the strength of the evidence said plainly and
every difference with its 95 % interval: the paired differences and their tests come from the tables
(``statistics.paired_difference``), and the rule and wording from ``statistics`` (``passes``,
``difference_reading``): a test over fewer than ``statistics.MIN_REPETITIONS`` repetitions is not read, and
one that does not pass is "not distinguishable" with that many repetitions, never "no effect".

The comparisons are fixed in advance, as the tables' docstrings say: in the distillation table, curriculum
against vanilla among distilled branches, one per case, read as it is (with the chance caveat when several
are read), and distillation's own effect, Holm-corrected across the cases; in the strategy table, curriculum
against vanilla at every trained exit, one family, Holm-corrected, and the final exit against the plain
network's, another family, Holm-corrected.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mecl_utils.protocol.profiles import Profile
from mecl_utils.report.plots import difference_text, mean_std, p_text, paired_repetitions
from mecl_utils.report.statistics import (
    ALPHA,
    CONFIDENCE,
    MIN_REPETITIONS,
    PairedDifference,
    difference_reading,
    passes,
)

__all__ = [
    "chance_caveat",
    "distillation_pairs",
    "distillation_reading",
    "format_distillation_table",
    "format_strategy_table",
    "network_setting_table",
    "open_questions_reading",
    "strategy_exit_accuracies",
    "strategy_reading",
    "style_distillation_table",
    "style_strategy_table",
    "tested_exits",
]

DISTILLATION_GROUPS = ("plain vanilla", "plain curriculum", "distilled vanilla", "distilled curriculum")
STRATEGY_NAMES = {
    "plain": "plain",
    "end_to_end_equal": "end to end, equal",
    "end_to_end_sdn": "end to end, SDN",
    "layer_wise": "layer-wise",
}


def _difference(row: pd.Series, template: str, mean: str | None = None) -> PairedDifference:
    """The paired difference a table row holds under ``template`` ('final {}': 'final low', 'final p'...)."""
    pairs = row.get(template.format("pairs"), row["repetitions"])
    return PairedDifference(
        n=int(pairs),
        mean=row[mean or template.format("difference")],
        sd=np.nan,  # not kept in the tables, not needed to read them
        low=row[template.format("low")],
        high=row[template.format("high")],
        p=row[template.format("p")],
    )


def _difference_cell(row: pd.Series, template: str, mean: str | None = None, corrected: bool = False) -> str:
    """'+1.23 [-0.50, +2.96], p 0.120' (Holm p where ``corrected``); '–' when there is no difference."""
    difference = _difference(row, template, mean)
    if pd.isna(difference.mean):
        return "–"
    text = _with_interval(difference, unit="")
    p = row[template.format("p adjusted")] if corrected else difference.p
    return text if pd.isna(p) else f"{text}, {'Holm p' if corrected else 'p'} {p_text(p)}"


def _with_interval(difference: PairedDifference, unit: str = "points") -> str:
    """'+1.23 [-0.50, +2.96] points': the mean difference and its interval (where there is one)."""
    text = difference_text(difference.mean, difference.low, difference.high)
    return f"{text} {unit}" if unit else text


def _case(row: pd.Series) -> str:
    return f"{row['backbone']} / {row['dataset']} / branch {int(row['branch'])}"


def format_distillation_table(table: pd.DataFrame) -> pd.DataFrame:
    """``network_runs.distillation_table`` as strings: mean ± std per group, then curriculum's and
    distillation's differences in points with their 95 % intervals and p-values (distillation's
    Holm-corrected across the cases)."""
    out = []
    for _, row in table.iterrows():
        entry = {"Case": _case(row)}
        for group in DISTILLATION_GROUPS:
            entry[group] = mean_std(row[f"{group} mean"], row[f"{group} std"])
        entry["curriculum, distilled"] = _difference_cell(row, "curriculum {} (distilled)")
        entry["distillation, vanilla"] = _difference_cell(row, "distillation {} (vanilla)", corrected=True)
        entry["repetitions"] = int(row["repetitions"])
        out.append(entry)
    return pd.DataFrame(out)


def distillation_pairs(rows: pd.DataFrame):
    """Test accuracy of plain and distilled branches per method, one grey line per repetition, per case."""
    reps = rows[
        rows["stage"].isin(["repetition", "distillation"]) & rows["method"].isin(["vanilla", "curriculum"])
    ]
    prefix = np.where(reps["stage"] == "distillation", "distilled ", "plain ")
    return paired_repetitions(reps.assign(method=prefix + reps["method"]), methods=DISTILLATION_GROUPS)


def style_distillation_table(table: pd.DataFrame):
    """``format_distillation_table`` for a page: a pandas Styler narrow enough for the text column.

    The case takes one cell (backbone, then data set, branch and repetitions in small type) and each std
    goes under its mean, so the table reads without scrolling sideways.
    """
    text = format_distillation_table(table).astype(str).map(html.escape)
    case = table["dataset"] + "&nbsp;·&nbsp;branch&nbsp;" + table["branch"].astype(int).astype(str)
    runs = table["repetitions"].astype(int).astype(str) + "&nbsp;repetitions"
    folded = pd.DataFrame({"Case": table["backbone"] + "<br><small>" + case + "<br>" + runs + "</small>"})
    for column in text.columns.drop(["Case", "repetitions"]):
        mean, plus_minus, std = text[column].str.partition(" ± ").T.to_numpy()
        folded[column] = np.where(plus_minus == "", mean, mean + "<br><small>±&nbsp;" + std + "</small>")
    compact = [
        {"selector": "td, th", "props": "font-size: 0.85em; padding: 0.2em 0.4em; text-align: left;"},
        {"selector": "td", "props": "vertical-align: top;"},
    ]
    return folded.style.hide(axis="index").set_table_styles(compact)


def distillation_reading(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    """One paragraph per case: distillation's effect on vanilla branches, curriculum's with and without it,
    each difference with its interval; then the families and, where an uncorrected test passes, the caveat."""
    sentences = []
    for _, row in table.iterrows():
        distillation = _difference(row, "distillation {} (vanilla)")
        corrected = row["distillation p adjusted (vanilla)"]
        with_ = _difference(row, "curriculum {} (distilled)")
        without = _difference(row, "curriculum {} (plain)")
        sentences.append(
            f"**{_case(row)}**: distilled minus plain vanilla branches, "
            f"{difference_reading(distillation, corrected, alpha, corrected=True)}. Curriculum minus vanilla "
            f"among distilled branches, {difference_reading(with_, alpha=alpha)}. Among plain branches "
            f"(Table IV's comparison on these repetitions), {difference_reading(without, alpha=alpha)}."
        )
    if len(table):
        cases = f"{len(table)} case{'s' if len(table) != 1 else ''}"
        sentences.append(
            f"Distillation's p-values are Holm-corrected across the table's {cases}; curriculum's, with "
            "distillation (the comparison fixed in advance) and without, are read as they are. Each interval "
            "is its own comparison's, uncorrected."
        )
    caveat = _table_caveat(table, ("curriculum p (distilled)", "curriculum p (plain)"), alpha)
    return "\n\n".join([*sentences, caveat] if caveat else sentences)


def _table_caveat(table: pd.DataFrame, columns: tuple[str, ...], alpha: float) -> str:
    """``chance_caveat`` over the uncorrected p-values of ``columns`` that can be read (enough repetitions, no
    NaN); "" when none passes."""
    tests = [
        (float(p), int(n))
        for column in columns
        for p, n in zip(table[column], table["repetitions"], strict=True)
        if n >= MIN_REPETITIONS and not pd.isna(p)
    ]
    passed = sum(passes(p, n, alpha) for p, n in tests)
    return chance_caveat(len(tests), passed, alpha) if passed else ""


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


def _exit_names(table: pd.DataFrame) -> list[str]:
    return [c.removesuffix(" mean") for c in table.columns if c.endswith(" mean")]


def format_strategy_table(table: pd.DataFrame) -> pd.DataFrame:
    """``network_runs.strategy_table`` as strings: each exit's mean ± std, beside curriculum's curriculum
    minus vanilla with its 95 % interval and Holm-corrected p; ``final vs plain`` likewise."""
    out = []
    for _, row in table.iterrows():
        entry = {"strategy": STRATEGY_NAMES.get(row["strategy"], row["strategy"]), "method": row["method"]}
        for name in _exit_names(table):
            text = mean_std(row[f"{name} mean"], row[f"{name} std"])
            tested = not pd.isna(row.get(f"{name} difference", np.nan))
            entry[name] = (
                f"{text} ({_difference_cell(row, f'{name} {{}}', corrected=True)})" if tested else text
            )
        entry["final vs plain"] = (
            "–"  # the reference itself
            if row["strategy"] == "plain"
            else _difference_cell(row, "final vs plain {}", "final vs plain", corrected=True)
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


def strategy_exit_accuracies(rows: pd.DataFrame, split: str = "test"):
    """Each exit's test accuracy per strategy: one panel per strategy, vanilla and curriculum side by side."""
    strategies = list(dict.fromkeys(rows["strategy"]))
    exits = sorted(
        (c.removeprefix(f"{split}_accuracy_") for c in rows.columns if c.startswith(f"{split}_accuracy_")),
        key=lambda name: (name == "final", name),
    )
    fig, axes = plt.subplots(
        1, len(strategies), figsize=(3.6 * len(strategies), 3.4), sharey=True, squeeze=False
    )
    for ax, strategy in zip(axes.flat, strategies, strict=True):
        group = rows[rows["strategy"] == strategy]
        for offset, (method, color) in zip(
            (-0.12, 0.12), (("vanilla", "C7"), ("curriculum", "C0")), strict=True
        ):
            runs = group[group["method"] == method]
            for index, name in enumerate(exits):
                values = 100 * runs[f"{split}_accuracy_{name}"]
                ax.scatter(np.full(len(values), index + offset), values, color=color, s=18, alpha=0.7)
                ax.scatter([index + offset], [values.mean()], color=color, marker="_", s=200, linewidths=3,
                           label=method if index == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(exits)), exits)
        ax.set(title=STRATEGY_NAMES.get(strategy, strategy), xlabel="exit")
    axes.flat[0].set_ylabel(f"{split} accuracy (%)")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def strategy_reading(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    """Per strategy: curriculum against vanilla at every exit; the final exit against the plain network's.

    Every difference with its interval; the p-values read are the table's Holm-corrected ones.
    """
    exits = _exit_names(table)
    sentences, tests = [], 0
    for strategy, group in table.groupby("strategy", sort=False):
        by_method = group.set_index("method")
        if not {"vanilla", "curriculum"} <= set(by_method.index):
            continue
        vanilla, curriculum = by_method.loc["vanilla"], by_method.loc["curriculum"]
        parts = []
        for name in tested_exits(strategy, exits):
            difference = _difference(curriculum, f"{name} {{}}")
            corrected = curriculum[f"{name} p adjusted"]
            parts.append(f"At {name}: {difference_reading(difference, corrected, alpha, corrected=True)}.")
            tests += not pd.isna(difference.p)
        sentence = (
            f"**{STRATEGY_NAMES.get(strategy, strategy)}**, curriculum minus vanilla. {' '.join(parts)}"
        )
        if strategy != "plain":
            final = [
                difference_reading(
                    _difference(row, "final vs plain {}", "final vs plain"),
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


def chance_caveat(tests: int, passed: int, alpha: float) -> str:
    """What ``passed`` of ``tests`` paired tests below ``alpha`` are worth when nothing is there at all."""
    if tests == 1:
        return (
            f"This one test falls below {alpha:g}; with no effect at all it would do so with probability "
            f"{alpha:g}. Read it as a lead to re-test with more repetitions, not as a finding."
        )
    verb = "falls" if passed == 1 else "fall"
    return (
        f"{passed} of these {tests} tests {verb} below {alpha:g}; with no effect anywhere, {tests} tests at "
        f"that level would do so about {tests * alpha:.1f} times by chance alone. Read them as leads to "
        "re-test with more repetitions, not as findings."
    )


def open_questions_reading(distilled: pd.DataFrame, strategies: pd.DataFrame, alpha: float = ALPHA) -> str:
    """The two paragraphs that answer the paper's Sec. V questions as far as these runs can."""
    n_cases = len(distilled)
    reps = int(distilled["repetitions"].min()) if n_cases else 0
    gains = [(_case(row), _difference(row, "curriculum {} (distilled)")) for _, row in distilled.iterrows()]
    ahead = sum(d.mean > 0 for _, d in gains)
    helped = sum(d.mean > 0 and passes(d.p, d.n, alpha) for _, d in gains)
    first = (
        f"*Does curriculum learning combine with distillation?* In {ahead} of {n_cases} cases the distilled "
        "curriculum branches average more than the distilled vanilla ones"
    )
    first += (
        f"; with {reps} repetitions no paired test is read (at least {MIN_REPETITIONS} are needed)"
        if reps < MIN_REPETITIONS
        else f", and in {helped} the gain is distinguishable from noise at the {alpha:g} level over {reps} "
        "repetitions"
    )
    if gains:
        first += (
            f". Curriculum minus vanilla among distilled branches, with {CONFIDENCE * 100:.0f} % intervals: "
            + "; ".join(f"{case} {_with_interval(d)}" for case, d in gains)
        )
    first += ". " + (
        "These runs do not show that it does" + _span([d for _, d in gains])
        if not helped
        else "That holds for these cases at this scale only"
    )
    caveat = _table_caveat(distilled, ("curriculum p (distilled)",), alpha)
    if caveat:
        first += ". " + caveat.removesuffix(".")
    first += (
        ". The curriculum choices were made for plain branches, and the distillation weight and temperature "
        "were fixed rather than searched."
    )
    curriculum = strategies[strategies["method"] == "curriculum"]
    exits = _exit_names(strategies)
    n = int(curriculum["repetitions"].min()) if len(curriculum) else 0
    cells = [
        (row["strategy"], name, _difference(row, f"{name} {{}}"), row[f"{name} p adjusted"])
        for _, row in curriculum.iterrows()
        for name in tested_exits(row["strategy"], exits)
    ]
    beyond = [(s, e, d) for s, e, d, p in cells if passes(p, d.n, alpha)]
    second = (
        f"*Does curriculum learning help end-to-end or layer-wise training?* Of the {len(cells)} comparisons "
        "of curriculum with vanilla (every trained exit of every way of training), "
    )
    second += (
        f"none is read: with {n} repetitions a paired test cannot be (at least {MIN_REPETITIONS} are needed)"
        if n < MIN_REPETITIONS
        else f"{len(beyond)} {'is' if len(beyond) == 1 else 'are'} distinguishable from noise at the "
        f"{alpha:g} level over {n} repetitions after Holm's correction across them"
    )
    second += (
        ": "
        + "; ".join(f"{STRATEGY_NAMES.get(s, s)} at {e}, {_with_interval(d)}" for s, e, d in beyond)
        + ". That holds at this scale only."
        if beyond
        else ". These runs show neither a gain nor a loss from curriculum"
        + _span([d for *_, d, _ in cells])
        + "."
    )
    vanilla = strategies[(strategies["method"] == "vanilla") & (strategies["strategy"] != "plain")]
    if len(vanilla) and (strategies["strategy"] == "plain").any():
        finals = [
            (STRATEGY_NAMES.get(row["strategy"], row["strategy"]),
             _difference(row, "final vs plain {}", "final vs plain"), row["final vs plain p adjusted"])
            for _, row in vanilla.iterrows()
        ]  # fmt: skip
        family = int(strategies["final vs plain p adjusted"].notna().sum())
        passing = [(name, d) for name, d, p in finals if passes(p, d.n, alpha)]
        second += (
            " The trade-off the paper warns about would show as a final exit below the plain network's. With "
            "vanilla training the other ways' final exits differ from the plain network's by "
            + "; ".join(f"{name} {_with_interval(d)}" for name, d, _ in finals)
        )
        pairs = min(d.n for _, d, _ in finals)
        corrected = (
            f". After Holm's correction across the table's {family} final-versus-plain comparisons (both "
            "methods), "
        )
        if pairs < MIN_REPETITIONS:
            second += (
                f". With {pairs} repetitions no test of it is read, so these runs neither show the trade-off "
                "nor rule out one within those intervals."
            )
        elif passing:
            second += (
                corrected
                + ", ".join(f"{name} ({d.mean:+.2f} points)" for name, d in passing)
                + f" {'is' if len(passing) == 1 else 'are'} distinguishable from noise at the {alpha:g} "
                "level; a negative difference among them is the trade-off, at this scale."
            )
        else:
            second += (
                corrected
                + f"none is distinguishable from noise at the {alpha:g} level, so these runs neither "
                "show the trade-off nor rule out one within those intervals."
            )
    second += (
        " These runs are short and small, stated above, and use one teacher and one stretched pacing without "
        "a search of their own; they say nothing about other exit weightings or about the paper's scale."
    )
    return first + "\n\n" + second


def _span(differences: list[PairedDifference]) -> str:
    """': their intervals together span a to b points, ...' ('' when no interval exists)."""
    lows = [d.low for d in differences if not pd.isna(d.low)]
    highs = [d.high for d in differences if not pd.isna(d.high)]
    if not lows:
        return ""
    return (
        f": their intervals together span {min(lows):+.2f} to {max(highs):+.2f} points, so differences of "
        "that size either way remain possible"
    )
