"""IEC 61850 MMS server (``iec61850``): the aggregated V2G fleet as a virtual IED for the control centre.

One IED (``V2GAgg`` by default) with one logical device per served grid area; each holds
IEC 61850-7-420-style logical nodes, numbered n for the n-th area: MMXUn (the fleet's power now),
DRCTn (what the fleet can still move up or down, the area's import limit on record), DRCCn (the DSO's
import-limit setpoint and the limit in force) and DRCSn (EVs plugged in, limit active, the outcome of
the last write). A write of ``DRCCn.WImpLimSpt.setMag`` (SP, W) goes to :class:`DsoLimitDesk`; a
rejected one answers ``object-value-invalid`` and its reason is readable in ``DRCSn.LastWr.stVal``. The readable values
are refreshed from the platform every ``update_interval`` and at once after an accepted write.
docs/grid-interfaces.md lists every data object.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import iec61850

from v2g.services.planning.dso_interface import AreaAggregate, DsoLimitDesk, LimitRejectedError

log = logging.getLogger("v2g.iec61850")

LAST_WRITE_MAX_CHARS = 255


def ld_inst(area_id: str) -> str:
    """The logical device instance of a grid area: its id with every other character than A-Z, 0-9, _ as _."""
    inst = re.sub(r"[^A-Za-z0-9_]", "_", area_id)
    if not inst or not inst[0].isalpha():
        inst = f"A{inst}"
    return inst


def ln_inst(config: Iec61850Config, area_id: str) -> str:
    """The instance number of the logical nodes of an area: its position in ``config.areas``, from 1.

    The numbers are unique across the IED: the server keys its write callbacks by the path below the
    logical device, so two areas' ``DRCC1`` would share one callback.
    """
    return str(config.areas.index(area_id) + 1)


def ref(config: Iec61850Config, area_id: str, ln_class: str, rest: str) -> str:
    """A data attribute of an area as the server names it: ``LDinst/LNn.DO.DA``."""
    return f"{ld_inst(area_id)}/{ln_class}{ln_inst(config, area_id)}.{rest}"


@dataclass(frozen=True)
class Iec61850Config:
    host: str = "127.0.0.1"
    port: int = 102
    ied_name: str = "V2GAgg"
    areas: Sequence[str] = ()
    update_interval: timedelta = timedelta(seconds=5)
    max_connections: int = 4

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", self.ied_name):
            msg = f"iec61850_ied_name: {self.ied_name!r} must be a letter then up to 31 letters, digits or _"
            raise ValueError(msg)
        if not self.areas:
            msg = "iec61850_areas: no grid area to serve"
            raise ValueError(msg)
        insts = [ld_inst(a) for a in self.areas]
        for a, inst in zip(self.areas, insts, strict=True):
            if insts.count(inst) > 1:
                msg = f"iec61850_areas: {a!r} gives the logical device {inst!r} of another area"
                raise ValueError(msg)
            if len(self.ied_name) + len(inst) > 64:
                msg = f"iec61850_areas: {a!r} makes the logical device name longer than 64 characters"
                raise ValueError(msg)


def _float(name: str, fc: str, attr: str = "mag") -> dict[str, Any]:
    """A data object whose value is ``<attr>.f`` (Float32), as MV (``mag``) or ASG read-only (``setMag``)."""
    return {
        "name": name,
        "das": [],
        "constructed_das": [{"name": attr, "fc": fc, "children": [{"name": "f", "fc": fc, "type": "Float32"}]}],
    }


def _st(name: str, kind: str | dict[str, Any], value: dict[str, Any] | None = None) -> dict[str, Any]:
    da: dict[str, Any] = {"name": "stVal", "fc": "ST", "type": kind, "trg_ops": ["data_changed"]}
    if value is not None:
        da["value"] = value
    return {"name": name, "das": [da]}


def model_spec(config: Iec61850Config) -> dict[str, Any]:
    """The IED model: one logical device per grid area."""
    lds = []
    for area_id in config.areas:
        n = ln_inst(config, area_id)
        lds.append(
            {
                "inst": ld_inst(area_id),
                "lns": [
                    {
                        "lln0": True,
                        "dos": [
                            _st("Mod", "Enumerated", {"type": "int", "value": 1}),
                            _st("Beh", "Enumerated", {"type": "int", "value": 1}),
                            _st("Health", "Enumerated", {"type": "int", "value": 1}),
                            {
                                "name": "NamPlt",
                                "das": [
                                    {
                                        "name": "vendor",
                                        "fc": "DC",
                                        "type": {"type": "VisibleString", "max_len": 255},
                                        "value": {"type": "visible_string", "value": "v2g-platform"},
                                    },
                                    {
                                        "name": "d",
                                        "fc": "DC",
                                        "type": {"type": "VisibleString", "max_len": 255},
                                        "value": {"type": "visible_string", "value": area_id},
                                    },
                                ],
                            },
                        ],
                    },
                    {"class": "MMXU", "inst": n, "dos": [_float("TotW", "MX")]},
                    {
                        "class": "DRCT",
                        "inst": n,
                        "dos": [_float("WAvlUp", "MX"), _float("WAvlDn", "MX"), _float("WMaxImp", "CF", "setMag")],
                    },
                    {
                        "class": "DRCC",
                        "inst": n,
                        "dos": [
                            # the setpoint is one flat Float32 (the server writes no component of a structure)
                            {"name": "WImpLimSpt", "das": [{"name": "setMag", "fc": "SP", "type": "Float32"}]},
                            _float("WImpLim", "MX"),
                        ],
                    },
                    {
                        "class": "DRCS",
                        "inst": n,
                        "dos": [
                            _st("EvCnt", "Int32"),
                            _st("EvOnl", "Int32"),
                            _st("LimAct", "Boolean"),
                            _st("LastWr", {"type": "VisibleString", "max_len": LAST_WRITE_MAX_CHARS}),
                        ],
                    },
                ],
            }
        )
    return {"ied_name": config.ied_name, "lds": lds}


class WriteRejectedError(Exception):
    """Raised in a write callback: the MMS client gets ``object-value-invalid``."""

    code = "ObjectValueInvalid"


@dataclass
class DerAggregateServer:
    """The virtual IED: serves the area aggregates and takes the DSO's import-limit setpoints."""

    config: Iec61850Config
    desk: DsoLimitDesk
    aggregates: Callable[[], Mapping[str, AreaAggregate]]
    port: int | None = None
    writes: list[tuple[str, float, str]] = field(default_factory=list)  # (area, W, outcome)
    _server: Any = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind (port 0 picks a free one), serve, and refresh the values periodically; returns the port."""
        server = iec61850.IedServer.from_model_spec(model_spec(self.config))
        server.bind(f"{self.config.host}:{self.config.port}")
        server.max_connections = self.config.max_connections
        server.vendor = "v2g-platform"
        server.model_name = "V2G aggregator"
        for area_id in self.config.areas:
            server.on_write(ref(self.config, area_id, "DRCC", "WImpLimSpt.setMag"), self._on_write(area_id))
        await server.start()
        self._server = server
        self.port = int(server.bound_addr.rsplit(":", 1)[1])
        # values updated at once after start() made the first MMS association of a client fail now and
        # then (connection lost on its first request): let the server settle first
        await asyncio.sleep(0.2)
        self.refresh()
        self._task = asyncio.create_task(self._refresh_forever())
        log.info(
            "IEC 61850 server %s on %s (%d areas)", self.config.ied_name, server.bound_addr, len(self.config.areas)
        )
        return self.port

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
            del server
            # the native server holds Python callbacks: let it go now, not during interpreter shutdown
            gc.collect()

    def refresh(self) -> None:
        """Write the platform's current aggregates into the served values."""
        server = self._server
        if server is None:
            return
        values = self.aggregates()
        for area_id in self.config.areas:
            agg = values.get(area_id)
            if agg is None:
                continue
            c = self.config
            server.update_float32(ref(c, area_id, "MMXU", "TotW.mag.f"), agg.p_kw * 1000.0)
            server.update_float32(ref(c, area_id, "DRCT", "WAvlUp.mag.f"), agg.up_kw * 1000.0)
            server.update_float32(ref(c, area_id, "DRCT", "WAvlDn.mag.f"), agg.down_kw * 1000.0)
            server.update_float32(ref(c, area_id, "DRCT", "WMaxImp.setMag.f"), agg.static_import_limit_kw * 1000.0)
            server.update_float32(ref(c, area_id, "DRCC", "WImpLim.mag.f"), agg.import_limit_kw * 1000.0)
            server.update_int32(ref(c, area_id, "DRCS", "EvCnt.stVal"), agg.evs_plugged_in)
            server.update_int32(ref(c, area_id, "DRCS", "EvOnl.stVal"), agg.evs_online)
            server.update_bool(ref(c, area_id, "DRCS", "LimAct.stVal"), agg.dso_limit_active)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.update_interval.total_seconds())
            try:
                self.refresh()
            except Exception:  # a failed read of the platform must not stop the server
                log.exception("IEC 61850: refreshing the served values failed")

    def _on_write(self, area_id: str) -> Callable[[str, Any], bool]:
        last = ref(self.config, area_id, "DRCS", "LastWr.stVal")

        def on_write(path: str, value: Any) -> bool:
            try:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise LimitRejectedError(area_id, f"import_limit_kw: {value!r} is not a number")
                signal = self.desk.set_import_limit(area_id, float(value) / 1000.0, via=f"IEC 61850 {path}")
            except LimitRejectedError as exc:
                outcome = f"rejected: {exc}"
                self._last_write(last, outcome)
                self.writes.append((area_id, float(value) if isinstance(value, int | float) else float("nan"), outcome))
                raise WriteRejectedError(str(exc)) from exc
            outcome = f"accepted: import <= {signal.import_limit_kw:g} kW until {signal.end_at.isoformat()}"
            self._last_write(last, outcome)
            self.writes.append((area_id, float(value), outcome))
            try:
                self.refresh()
            except Exception:
                log.exception("IEC 61850: refreshing after a write failed")
            return True

        return on_write

    def _last_write(self, path: str, outcome: str) -> None:
        if self._server is not None:
            self._server.update_string(path, outcome[:LAST_WRITE_MAX_CHARS])
