"""Fleet planner: co-optimises day-ahead energy and Nordic FCR reserves for plugged-in EVs.

A pure core (numpy, scipy, HiGHS). Entry points: :func:`plan` / :class:`FleetPlanner`,
:func:`check_schedule`, the input and output types in :mod:`v2g.planning.model`.
"""

from v2g.planning.check import Violation, check_schedule
from v2g.planning.errors import PlanningInputError
from v2g.planning.model import (
    PRODUCTS,
    AreaStats,
    CommitmentShortfall,
    ConfidenceCost,
    EvPlan,
    EvSession,
    FleetPlan,
    GridAreaLimits,
    PlanningProblem,
    Product,
    ReserveBid,
    ReserveCommitment,
    SiteLimits,
    Strategy,
    TargetShortfall,
)
from v2g.planning.planner import FleetPlanner, PlannerOptions, plan
from v2g.planning.rules import PlanningRules, load_rules

__all__ = [
    "PRODUCTS",
    "AreaStats",
    "CommitmentShortfall",
    "ConfidenceCost",
    "EvPlan",
    "EvSession",
    "FleetPlan",
    "FleetPlanner",
    "GridAreaLimits",
    "PlannerOptions",
    "PlanningInputError",
    "PlanningProblem",
    "PlanningRules",
    "Product",
    "ReserveBid",
    "ReserveCommitment",
    "SiteLimits",
    "Strategy",
    "TargetShortfall",
    "Violation",
    "check_schedule",
    "load_rules",
    "plan",
]
