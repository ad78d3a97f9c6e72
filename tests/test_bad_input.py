"""Every bad input in tools/bad_inputs.py's table fails with a one-line ValueError or TypeError
that names the argument: none is accepted silently, none fails deep inside numpy or torch."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from bad_inputs import CASES, outcome  # noqa: E402


def test_the_table_covers_at_least_114_bad_inputs():
    assert len(CASES) >= 114


@pytest.mark.parametrize("case", CASES, ids=[f"{case.call} names {case.name}" for case in CASES])
def test_bad_input_gets_a_clear_error(case):
    result, said = outcome(case)
    assert result == "clear", f"{case.call}: {result} ({said}); the message must name {case.name!r}"
