"""Properties of the fuse check and of gate evaluation."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from v2g.blueprint.model import AllOf, AnyOf, TaskCondition
from v2g.journey.eligibility import fuse_check
from v2g.journey.engine import unmet_conditions
from v2g.journey.model import Task, TaskKind
from v2g.journey.rules import load_rules

RULES = load_rules()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    fuse=st.sampled_from([10, 16, 20, 25, 35, 50, 63]),
    phases=st.sampled_from([1, 3]),
    household_kw=st.floats(0, 40),
    pv_kw=st.floats(0, 30),
    charger_a=st.floats(1, 80),
    charger_phases=st.sampled_from([1, 3]),
)
def test_fuse_check_never_exceeds_the_usable_fuse_current(
    fuse: int, phases: int, household_kw: float, pv_kw: float, charger_a: float, charger_phases: int
) -> None:
    r = fuse_check(
        main_fuse_a=fuse,
        phases=phases,
        voltage_v=230,
        household_peak_kw=household_kw,
        pv_kw=pv_kw,
        charger_current_a=charger_a,
        charger_phases=charger_phases,
        rules=RULES,
    )
    assert 0 <= r.safe_charge_current_a <= charger_a + 1e-9
    assert 0 <= r.safe_discharge_current_a <= charger_a + 1e-9
    assert r.safe_charge_current_a + r.household_current_a <= r.usable_current_a + 1e-3 or r.safe_charge_current_a == 0
    assert r.safe_discharge_current_a + r.pv_current_a <= r.usable_current_a + 1e-3 or r.safe_discharge_current_a == 0
    assert r.safe_charge_current_a == 0 or r.safe_charge_current_a >= RULES.min_charge_current_a


def _task(item: str, outcome: str | None) -> Task:
    t = Task(f"j:{item}", "j", item, "s", "a", "r", TaskKind.MANUAL, item, T0, outcomes=("ok", "no"))
    return t if outcome is None else t.complete(at=T0, by="u", outcome=outcome)


states = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from([None, "ok", "no"]))


@given(states=states, wanted=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3))
def test_all_holds_iff_each_holds_and_any_iff_one_holds(states: dict[str, str | None], wanted: list[str]) -> None:
    tasks = {k: _task(k, v) for k, v in states.items()}
    conds = tuple(TaskCondition(task=w, outcome="ok") for w in wanted)
    holds = [not unmet_conditions(c, tasks, describe={}) for c in conds]
    assert all(h == (states.get(w) == "ok") for h, w in zip(holds, wanted, strict=True))
    assert (not unmet_conditions(AllOf(all=conds), tasks, describe={})) == all(holds)
    assert (not unmet_conditions(AnyOf(any=conds), tasks, describe={})) == any(holds)
    assert len(unmet_conditions(AllOf(all=conds), tasks, describe={})) == holds.count(False)
