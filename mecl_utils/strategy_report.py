"""Tables, figures and readings of the strategy experiments (the paper's Sec. V questions, ``strategy_runs``).

Every sentence here is built from computed results, with the strength of the evidence said plainly: a
paired t-test over fewer than ``plots.MIN_REPETITIONS`` repetitions is not read at all, and a p-value at or
above the significance level is "within noise", whichever way the means point.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .plots import MIN_REPETITIONS, mean_std, p_text, paired_repetitions
from .profiles import Profile

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
    "tested_exits",
]

DISTILLATION_GROUPS = ("plain vanilla", "plain curriculum", "distilled vanilla", "distilled curriculum")
STRATEGY_NAMES = {
    "plain": "plain",
    "end_to_end_equal": "end to end, equal",
    "end_to_end_sdn": "end to end, SDN",
    "layer_wise": "layer-wise",
}


def _evidence(p: float, repetitions: int, alpha: float) -> str:
    if repetitions < MIN_REPETITIONS or pd.isna(p):
        return f"{repetitions} repetitions are too few for the test to say anything"
    if p >= alpha:
        return "within noise"
    return f"unlikely to be noise alone at the {alpha:g} level"


def _p_phrase(p: float) -> str:
    text = p_text(p)
    return f"p {text.replace('<', '< ')}" if text.startswith("<") else f"p = {text}"


def format_distillation_table(table: pd.DataFrame) -> pd.DataFrame:
    """``strategy_runs.distillation_table`` as strings: mean ± std per group, the two p-values."""
    out = []
    for _, row in table.iterrows():
        entry = {"Case": f"{row['backbone']} / {row['dataset']} / branch {int(row['branch'])}"}
        for group in DISTILLATION_GROUPS:
            entry[group] = mean_std(row[f"{group} mean"], row[f"{group} std"])
        entry["curriculum p, distilled"] = p_text(row["curriculum p (distilled)"])
        entry["distillation p, vanilla"] = p_text(row["distillation p (vanilla)"])
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


def distillation_reading(table: pd.DataFrame, alpha: float) -> str:
    """One sentence per case: distillation's effect on vanilla branches, curriculum's with and without it."""
    sentences = []
    for _, row in table.iterrows():
        n = int(row["repetitions"])
        case = f"**{row['backbone']} / {row['dataset']} / branch {int(row['branch'])}**"
        distilled = row["distilled vanilla mean"] - row["plain vanilla mean"]
        with_ = row["distilled curriculum mean"] - row["distilled vanilla mean"]
        without = row["plain curriculum mean"] - row["plain vanilla mean"]
        sentences.append(
            f"{case}: distillation moved vanilla branches by {distilled:+.2f} points "
            f"({_p_phrase(row['distillation p (vanilla)'])}, "
            f"{_evidence(row['distillation p (vanilla)'], n, alpha)}). With distillation, curriculum is "
            f"{with_:+.2f} points against vanilla ({_p_phrase(row['curriculum p (distilled)'])}, "
            f"{_evidence(row['curriculum p (distilled)'], n, alpha)}); without it, {without:+.2f} points."
        )
    caveat = _table_caveat(table, ("distillation p (vanilla)", "curriculum p (distilled)"), alpha)
    return "\n\n".join([*sentences, caveat] if caveat else sentences)


def _table_caveat(table: pd.DataFrame, columns: tuple[str, ...], alpha: float) -> str:
    """``chance_caveat`` over the p-values of ``columns`` (rows with enough repetitions, no NaN); "" when
    none falls below ``alpha``."""
    enough = table[table["repetitions"] >= MIN_REPETITIONS] if len(table) else table
    tests = [float(p) for column in columns for p in enough[column] if not pd.isna(p)]
    passed = sum(p < alpha for p in tests)
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
    """``strategy_runs.strategy_table`` as strings: each exit's mean ± std, curriculum's p under it."""
    out = []
    for _, row in table.iterrows():
        entry = {"strategy": STRATEGY_NAMES.get(row["strategy"], row["strategy"]), "method": row["method"]}
        for name in _exit_names(table):
            text = mean_std(row[f"{name} mean"], row[f"{name} std"])
            p = row.get(f"{name} p", np.nan)
            entry[name] = text if pd.isna(p) else f"{text} (p {p_text(p)})"
        entry["final vs plain"] = f"{row['final vs plain']:+.2f}"
        entry["repetitions"] = int(row["repetitions"])
        out.append(entry)
    return pd.DataFrame(out)


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


def strategy_reading(table: pd.DataFrame, alpha: float) -> str:
    """Per strategy: curriculum against vanilla at every exit; the final exit against the plain network's."""
    exits = _exit_names(table)
    sentences, tests, passed = [], 0, 0
    for strategy, group in table.groupby("strategy", sort=False):
        by_method = group.set_index("method")
        if not {"vanilla", "curriculum"} <= set(by_method.index):
            continue
        vanilla, curriculum = by_method.loc["vanilla"], by_method.loc["curriculum"]
        n = int(curriculum["repetitions"])
        names = tested_exits(strategy, exits)
        parts = [
            f"{name} {curriculum[f'{name} mean'] - vanilla[f'{name} mean']:+.2f} "
            f"({_p_phrase(curriculum.get(f'{name} p', np.nan))})"
            for name in names
        ]
        tested = [curriculum.get(f"{name} p", np.nan) for name in names]
        clear = [name for name, p in zip(names, tested, strict=True) if n >= MIN_REPETITIONS and p < alpha]
        verdict = (
            f"{n} repetitions are too few for the tests to say anything"
            if n < MIN_REPETITIONS
            else ("unlikely to be noise alone at " + ", ".join(clear))
            if clear
            else "every difference within noise"
        )
        name = STRATEGY_NAMES.get(strategy, strategy)
        sentence = f"**{name}**: curriculum minus vanilla, {', '.join(parts)}; {verdict}."
        if strategy != "plain":
            sentence += (
                f" Its final exit is {vanilla['final vs plain']:+.2f} points from the plain network's with "
                f"vanilla training and {curriculum['final vs plain']:+.2f} with curriculum."
            )
        sentences.append(sentence)
        if n >= MIN_REPETITIONS:
            tests += sum(not np.isnan(p) for p in tested)
            passed += len(clear)
    if passed:
        sentences.append(chance_caveat(tests, passed, alpha))
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


def open_questions_reading(distilled: pd.DataFrame, strategies: pd.DataFrame, alpha: float) -> str:
    """The two paragraphs that answer the paper's Sec. V questions as far as these runs can."""
    n_cases = len(distilled)
    reps = int(distilled["repetitions"].min()) if n_cases else 0
    helped = (
        (distilled["distilled curriculum mean"] > distilled["distilled vanilla mean"])
        & (distilled["curriculum p (distilled)"] < alpha)
    ).sum() if reps >= MIN_REPETITIONS else 0  # fmt: skip
    ahead = int((distilled["distilled curriculum mean"] > distilled["distilled vanilla mean"]).sum())
    first = (
        f"*Does curriculum learning combine with distillation?* In {ahead} of {n_cases} cases the distilled "
        f"curriculum branches average more than the distilled vanilla ones, and in {int(helped)} the paired "
        f"test over {reps} repetitions puts the gain beyond noise at the {alpha:g} level. "
    )
    first += (
        "So these runs give no evidence that it does, and with so few repetitions a small true effect would "
        "not show either"
        if not helped
        else "That holds for these cases at this scale only; a small effect elsewhere would not show"
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
        (row["strategy"], name, row.get(f"{name} p", np.nan))
        for _, row in curriculum.iterrows()
        for name in tested_exits(row["strategy"], exits)
    ]
    beyond = [(s, e) for s, e, p in cells if n >= MIN_REPETITIONS and p < alpha]
    vanilla = strategies[strategies["method"] == "vanilla"].set_index("strategy")
    by_strategy = curriculum.set_index("strategy")

    def gain(strategy: str, name: str) -> float:
        return by_strategy.loc[strategy, f"{name} mean"] - vanilla.loc[strategy, f"{name} mean"]

    trained = vanilla.drop(index="plain", errors="ignore")
    second = (
        f"*Does curriculum learning help end-to-end or layer-wise training?* Of the {len(cells)} comparisons "
        f"of curriculum with vanilla (every trained exit of every way of training), {len(beyond)} "
        f"{'is' if len(beyond) == 1 else 'are'} beyond noise "
        f"at the {alpha:g} level over {n} repetitions"
    )
    second += (
        ": "
        + ", ".join(f"{STRATEGY_NAMES.get(s, s)} at {e} ({gain(s, e):+.2f} points)" for s, e in beyond)
        + ". "
        + chance_caveat(sum(not np.isnan(p) for *_, p in cells), len(beyond), alpha)
        if beyond
        else "."
    )
    if len(trained) and "plain" in vanilla.index:
        low, high = trained["final vs plain"].min(), trained["final vs plain"].max()
        spread = vanilla.loc["plain", "final std"]
        second += (
            " The trade-off the paper warns about would show as a final exit below the plain network's. With "
            f"vanilla training the other ways' final exits lie between {low:+.2f} and {high:+.2f} points of "
            f"it, while the plain network's own final accuracy varies by {spread:.2f} points (standard "
            "deviation) between repetitions"
        )
        second += (
            ": differences of that size are what repetitions differ by, so these runs neither show the "
            "trade-off nor rule it out."
            if max(abs(low), abs(high)) < 2 * spread
            else "; these runs were not tested for it, so read the gap as a hint, not a finding."
        )
    second += (
        " These runs are short and small, stated above, and use one teacher and one stretched pacing without "
        "a search of their own; they say nothing about other exit weightings or about the paper's scale."
    )
    return first + "\n\n" + second
