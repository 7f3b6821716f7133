"""Market, TSO and tax numbers for the planner, loaded from ``rules.yaml`` (each number with its source)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from v2g.planning.errors import PlanningInputError


@dataclass(frozen=True, slots=True)
class PlanningRules:
    """Numbers the planner takes from configuration; money in EUR."""

    fcr_n_power_range_factor: float
    fcr_n_endurance_h: float
    fcr_d_nem_power_factor: float
    fcr_d_endurance_h: float
    min_bid_mw: float
    bid_granularity_mw: float
    confidence: float
    confidence_method: str
    energy_tax_eur_per_kwh: float
    vat_rate: float
    grid_fee_import_eur_per_kwh: float
    grid_benefit_export_eur_per_kwh: float
    stored_energy_tax_refund: bool
    battery_wear_eur_per_kwh: float
    target_shortfall_penalty_eur_per_kwh: float
    include_tariffs: bool = True
    commitment_shortfall_penalty_eur_per_kw_h: float = 100.0

    def with_options(self, **changes: Any) -> PlanningRules:
        """A copy with some fields changed (e.g. ``confidence=0.9``), validated."""
        rules = replace(self, **changes)
        rules.validate()
        return rules

    def validate(self) -> None:
        """Refuse impossible numbers, naming the field."""
        if not 0.0 < self.confidence < 1.0:
            msg = f"rules.confidence: {self.confidence} must lie strictly between 0 and 1"
            raise PlanningInputError(msg)
        if self.confidence_method not in ("normal", "cantelli"):
            msg = f"rules.confidence_method: {self.confidence_method!r} must be 'normal' or 'cantelli'"
            raise PlanningInputError(msg)
        for name in ("min_bid_mw", "bid_granularity_mw", "fcr_n_power_range_factor", "fcr_n_endurance_h"):
            if getattr(self, name) <= 0:
                msg = f"rules.{name}: must be > 0"
                raise PlanningInputError(msg)
        if self.commitment_shortfall_penalty_eur_per_kw_h <= 0:
            msg = "rules.commitment_shortfall_penalty_eur_per_kw_h: must be > 0"
            raise PlanningInputError(msg)
        if self.battery_wear_eur_per_kwh < 0:
            msg = "rules.battery_wear_eur_per_kwh: must be >= 0"
            raise PlanningInputError(msg)

    def import_price_eur_per_kwh(self, spot_eur_per_mwh: Any) -> Any:
        """What one kWh taken from the grid costs the owner (spot plus tariffs and VAT when enabled)."""
        spot = spot_eur_per_mwh / 1000.0
        if not self.include_tariffs:
            return spot
        return (spot + self.grid_fee_import_eur_per_kwh + self.energy_tax_eur_per_kwh) * (1.0 + self.vat_rate)

    def export_price_eur_per_kwh(self, spot_eur_per_mwh: Any) -> Any:
        """What one kWh fed back earns (spot, DSO grid benefit and the stored-energy tax refund when enabled)."""
        spot = spot_eur_per_mwh / 1000.0
        if not self.include_tariffs:
            return spot
        refund = self.energy_tax_eur_per_kwh if self.stored_energy_tax_refund else 0.0
        return spot + self.grid_benefit_export_eur_per_kwh + refund


def _num(tree: dict[str, Any], *path: str) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            msg = f"rules.yaml: missing {'.'.join(path)}"
            raise PlanningInputError(msg)
        node = node[key]
    return node


def load_rules(text: str | None = None) -> PlanningRules:
    """Parse the planner rules (the packaged ``rules.yaml`` unless ``text`` is given)."""
    if text is None:
        text = resources.files("v2g.planning").joinpath("rules.yaml").read_text(encoding="utf-8")
    tree = yaml.safe_load(text)
    if not isinstance(tree, dict):
        msg = "rules.yaml: the document must be a mapping"
        raise PlanningInputError(msg)
    sek_per_eur = float(_num(tree, "currency", "sek_per_eur"))
    rules = PlanningRules(
        fcr_n_power_range_factor=float(_num(tree, "fcr", "fcr_n", "power_range_factor")),
        fcr_n_endurance_h=float(_num(tree, "fcr", "fcr_n", "endurance_h")),
        fcr_d_nem_power_factor=float(_num(tree, "fcr", "fcr_d_up", "nem_power_factor")),
        fcr_d_endurance_h=float(_num(tree, "fcr", "fcr_d_up", "endurance_h")),
        min_bid_mw=float(_num(tree, "bids", "min_bid_mw")),
        bid_granularity_mw=float(_num(tree, "bids", "granularity_mw")),
        confidence=float(_num(tree, "confidence", "default")),
        confidence_method=str(_num(tree, "confidence", "method")),
        energy_tax_eur_per_kwh=float(_num(tree, "tariffs", "energy_tax_sek_per_kwh")) / sek_per_eur,
        vat_rate=float(_num(tree, "tariffs", "vat_rate")),
        grid_fee_import_eur_per_kwh=float(_num(tree, "tariffs", "grid_fee_import_sek_per_kwh")) / sek_per_eur,
        grid_benefit_export_eur_per_kwh=float(_num(tree, "tariffs", "grid_benefit_export_sek_per_kwh")) / sek_per_eur,
        stored_energy_tax_refund=bool(_num(tree, "tariffs", "stored_energy_tax_refund")),
        battery_wear_eur_per_kwh=float(_num(tree, "wear", "battery_wear_sek_per_kwh")) / sek_per_eur,
        target_shortfall_penalty_eur_per_kwh=float(_num(tree, "planner", "target_shortfall_penalty_eur_per_kwh")),
        commitment_shortfall_penalty_eur_per_kw_h=float(
            _num(tree, "planner", "commitment_shortfall_penalty_eur_per_kw_h")
        ),
    )
    rules.validate()
    return rules
