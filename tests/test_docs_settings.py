"""book/method.md's settings table: its profile columns are protocol.profiles, "ours" means ours."""

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from mecl_utils.protocol.profiles import PROFILES, Profile

METHOD_PAGE = Path(__file__).resolve().parents[1] / "book" / "method.md"
FIELDS = {field.name for field in dataclasses.fields(Profile)}


def settings_table() -> list[dict[str, str]]:
    """The rows of the Markdown table whose header starts with "| setting |", keyed by column title."""
    lines = METHOD_PAGE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| setting |"))

    def cells(line):
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    header = cells(lines[start])
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, cells(line), strict=True)))
    return rows


def field_of(row: dict[str, str]) -> str | None:
    """The Profile field a row names in backticks in its setting column, if any."""
    names = [name for name in re.findall(r"`(\w+)`", row["setting"]) if name in FIELDS]
    return names[0] if names else None


def value_of(cell: str):
    """The first backticked Python literal of a cell."""
    return ast.literal_eval(re.search(r"`([^`]+)`", cell).group(1))


def is_ours(row: dict[str, str]) -> bool:
    return row["source"].startswith("ours")


def marked_ours_in_profiles() -> set[str]:
    """Profile fields with "ours" in the comment on their line of profiles.py or in the comment just above."""
    marked, comment_above = set(), ""
    for line in inspect.getsource(Profile).splitlines():
        if line.strip().startswith("#"):
            comment_above += line
            continue
        field = re.match(r"\s+(\w+): [^#]+(#.*)?$", line)
        if field and re.search(r"\bours\b", comment_above + (field.group(2) or "")):
            marked.add(field.group(1))
        comment_above = ""
    return marked


ROWS = settings_table()
FIELD_ROWS = {field_of(row): row for row in ROWS if field_of(row)}
OURS_FIELDS = sorted(field for field, row in FIELD_ROWS.items() if is_ours(row))


def test_every_source_is_the_paper_or_ours():
    assert all(row["source"].startswith(("paper, ", "ours: ")) for row in ROWS), [r["source"] for r in ROWS]


def test_the_settings_the_paper_leaves_open_are_marked_ours():
    open_settings = {"n_val", "n_hparam", "n_train", "n_test", "image_size", "backbone_learning_rate"}
    open_settings |= {"backbone_epochs", "teacher_epochs", "branch_epochs", "branch_batch_size"}
    open_settings |= {"plateau_factor", "plateau_patience", "class_balance", "vanilla_sampling"}
    open_settings |= {"feature_mode"}
    assert set(OURS_FIELDS) == open_settings
    ours_rows = {row["setting"] for row in ROWS if is_ours(row)}
    assert {"pooling and widths of the head", "fine-tuning optimizer", "branch layer sizes"} <= ours_rows


@pytest.mark.parametrize("profile", ["paper", "book"])
@pytest.mark.parametrize("field", sorted(FIELD_ROWS))
def test_profile_columns_equal_the_profiles(field, profile):
    assert value_of(FIELD_ROWS[field][f"`{profile}` profile"]) == getattr(PROFILES[profile], field)


@pytest.mark.parametrize("field", OURS_FIELDS)
def test_ours_rows_are_marked_ours_in_profiles(field):
    assert field in marked_ours_in_profiles()


def test_settings_marked_ours_in_profiles_are_not_credited_to_the_paper():
    assert [
        field for field in marked_ours_in_profiles() & set(FIELD_ROWS) if not is_ours(FIELD_ROWS[field])
    ] == []
