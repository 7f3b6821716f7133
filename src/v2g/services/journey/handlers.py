"""Handlers for the automated services the journey area owns (see ``automation.CONTRACT_SERVICES``)."""

from __future__ import annotations

from dataclasses import asdict

from v2g.journey.eligibility import (
    Feasibility,
    check_compatibility,
    feasibility_indication,
    find_wallbox,
    site_fuse_check,
    wallboxes,
)
from v2g.journey.model import TaskStatus
from v2g.services.journey.automation import ServiceContext, ServiceOutcome, ServiceRegistry
from v2g.services.journey.export import build_export


def check_vehicle_compatibility(ctx: ServiceContext) -> ServiceOutcome:
    """The owner's vehicle (and wallbox, when chosen) against the compatibility matrix."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    if not file.vehicles:
        return ServiceOutcome.waiting("no vehicle registered for the customer")
    vehicle = file.vehicles[0]
    charger = file.chargers[0] if file.chargers else None
    result = check_compatibility(
        vehicle.make, vehicle.model, charger.vendor if charger else None, charger.model if charger else None
    )
    payload = {
        "compatible": result.compatible,
        "reason": result.reason,
        "vehicle": f"{vehicle.make} {vehicle.model}",
        "wallbox": f"{result.wallbox.vendor} {result.wallbox.model}" if result.wallbox else None,
        "max_discharge_kw": result.max_discharge_kw,
    }
    if not result.compatible:
        return ServiceOutcome.waiting(f"not compatible: {result.reason}", payload)
    return ServiceOutcome.done(payload)


def list_certified_wallboxes(ctx: ServiceContext) -> ServiceOutcome:
    """Certified wallboxes for the owner's vehicle, each with the site's safe fuse currents."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    vehicle = file.vehicles[0] if file.vehicles else None
    site = file.sites[0] if file.sites else None
    options = []
    for box in wallboxes():
        if box.demo and not any(c.vendor == box.vendor and c.model == box.model for c in file.chargers):
            continue
        if (
            vehicle is not None
            and not check_compatibility(vehicle.make, vehicle.model, box.vendor, box.model).compatible
        ):
            continue
        entry: dict[str, object] = {"vendor": box.vendor, "model": box.model, "coupling": box.coupling}
        if site is not None:
            entry["fuse_check"] = asdict(site_fuse_check(site, box, ctx.rules))
        options.append(entry)
    if not options:
        return ServiceOutcome.waiting("no certified wallbox fits the customer's vehicle")
    return ServiceOutcome.done({"wallboxes": options})


def dso_feasibility_indication(ctx: ServiceContext) -> ServiceOutcome:
    """Hosting capacity and connection queue of the site's grid area -> indicative answer and dates."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    if not file.sites:
        return ServiceOutcome.waiting("no site registered for the customer")
    site = file.sites[0]
    area = ctx.repo.grid_area(site.grid_area_id)
    if area is None:
        return ServiceOutcome.waiting(f"grid area {site.grid_area_id} unknown")
    requested = max((c.max_discharge_kw for c in file.chargers), default=0.0)
    if not file.chargers:
        box = next((b for b in wallboxes() if not b.demo), None)
        requested = box.max_discharge_kw if box else 0.0
    else:
        charger = file.chargers[0]
        box = find_wallbox(charger.vendor, charger.model)
        if box is not None:
            requested = min(requested, site_fuse_check(site, box, ctx.rules).safe_discharge_kw)
    indication = feasibility_indication(
        area,
        requested_export_kw=requested,
        committed_export_kw=ctx.repo.committed_export_kw(area.id),
        queued_before=ctx.repo.queued_before(ctx.journey, area.id),
        now=ctx.now,
        rules=ctx.rules,
    )
    payload = {
        "result": indication.result.value,
        "reason": indication.reason,
        "grid_area_id": area.id,
        "queue_position": indication.queue_position,
        "requested_export_kw": indication.requested_export_kw,
        "committed_export_kw": indication.committed_export_kw,
        "hosting_capacity_kw": indication.hosting_capacity_kw,
        "preliminary_connection_at": indication.preliminary_connection_at.isoformat(),
        "latest_connection_at": indication.latest_connection_at.isoformat(),
    }
    if area.dso_org_id and ctx.task.status is TaskStatus.OPEN:  # once, not on every retry
        ctx.notify(
            "V2G connection request",
            f"Customer site {site.id} in {area.id} requests {requested:.1f} kW export: {indication.reason}.",
            organisation_id=area.dso_org_id,
        )
    if indication.result is Feasibility.NOT_FEASIBLE:
        return ServiceOutcome.waiting(f"DSO feasibility: {indication.reason}", payload)
    return ServiceOutcome.done(payload, None)


def prepare_service_agreement(ctx: ServiceContext) -> ServiceOutcome:
    """Draft the service agreement from the offer and the site's safe limits."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    limits: dict[str, object] = {}
    if file.sites and file.chargers:
        box = find_wallbox(file.chargers[0].vendor, file.chargers[0].model)
        if box is not None:
            fuse = site_fuse_check(file.sites[0], box, ctx.rules)
            limits = {"max_charge_kw": fuse.safe_charge_kw, "max_discharge_kw": fuse.safe_discharge_kw}
    agreement = {
        "agreement_id": f"AGR-{ctx.journey.customer_id}",
        "customer": file.customer.name,
        "offer": ctx.journey.offer,
        "limits": limits,
        "prepared_at": ctx.now.isoformat(),
    }
    ctx.notify(
        "Your V2G service agreement",
        f"Agreement {agreement['agreement_id']} is ready to sign.",
        channel="email",
        address=file.customer.email,
    )
    return ServiceOutcome.done(agreement)


def publish_status_tracker(ctx: ServiceContext) -> ServiceOutcome:
    """Publish the preparation status tracker to the owner."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    ctx.notify(
        "Track your V2G preparation",
        f"Follow each step of journey {ctx.journey.id} in the app: stage, next step, queue position, go-live date.",
        channel="email",
        address=file.customer.email,
    )
    return ServiceOutcome.done(
        {"published_at": ctx.now.isoformat(), "path": f"/api/v1/journeys/{ctx.journey.id}/tracker"}
    )


def generate_box_site_id(ctx: ServiceContext) -> ServiceOutcome:
    """Assign the charger's V2G site id (``V2G-<grid area>-<charger id>``) unless it has one."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    if not file.chargers:
        return ServiceOutcome.waiting("no charger registered at the site yet")
    charger = file.chargers[0]
    site_id = charger.v2g_site_id or f"V2G-{file.sites[0].grid_area_id}-{charger.id}"
    ctx.repo.set_charger(charger.id, v2g_site_id=site_id)
    return ServiceOutcome.done({"charger_id": charger.id, "v2g_site_id": site_id})


def verify_connectivity(ctx: ServiceContext) -> ServiceOutcome:
    """Done once the device layer reported the charger's first boot and an accepted test profile."""
    events = ctx.task.result.get("device_events", {})
    missing = [k for k in ("boot", "test_profile_accepted") if k not in events]
    if missing:
        return ServiceOutcome.waiting(f"waiting for the charger to report: {', '.join(missing)}")
    return ServiceOutcome.done({"device_events": events})


def activate_v2g_service(ctx: ServiceContext) -> ServiceOutcome:
    """Switch the site's chargers on for V2G."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    for charger in file.chargers:
        ctx.repo.set_charger(charger.id, active=True)
    ctx.notify("V2G is active", "Your V2G service is active.", channel="email", address=file.customer.email)
    return ServiceOutcome.done({"activated_at": ctx.now.isoformat(), "chargers": [c.id for c in file.chargers]})


def _notify_role(ctx: ServiceContext, role: str, subject: str) -> ServiceOutcome:
    orgs = [o for o in ctx.repo.serving_organisations(ctx.journey.customer_id) if o.role == role]
    if not orgs:
        return ServiceOutcome.waiting(f"no {role.upper()} organisation is assigned to the customer")
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    units = [
        {"charger_id": c.id, "v2g_site_id": c.v2g_site_id, "max_discharge_kw": c.max_discharge_kw}
        for c in file.chargers
    ]
    body = f"{subject}: customer {ctx.journey.customer_id}, units {units}"
    for org in orgs:
        ctx.notify(subject, body, organisation_id=org.id)
    return ServiceOutcome.done({"notified": [o.id for o in orgs], "units": units})


def notify_tso(ctx: ServiceContext) -> ServiceOutcome:
    """Tell the TSO about the new (or leaving) V2G unit."""
    return _notify_role(
        ctx, "tso", "V2G unit " + ("leaving" if ctx.journey.status.value == "terminating" else "joining")
    )


def notify_bsp(ctx: ServiceContext) -> ServiceOutcome:
    """Tell the BSP about the new (or leaving) V2G unit."""
    return _notify_role(
        ctx, "bsp", "V2G unit " + ("leaving" if ctx.journey.status.value == "terminating" else "joining")
    )


def deactivate_charger(ctx: ServiceContext) -> ServiceOutcome:
    """Termination hook: mark the site's chargers inactive (the device layer replaces this to also
    clear profiles on the charger through the gateway)."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    for charger in file.chargers:
        ctx.repo.set_charger(charger.id, active=False)
    return ServiceOutcome.done({"deactivated": [c.id for c in file.chargers]})


def remove_v2g_site_id(ctx: ServiceContext) -> ServiceOutcome:
    """Remove the V2G site id and tell the DSO."""
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    removed = [c.v2g_site_id for c in file.chargers if c.v2g_site_id]
    for charger in file.chargers:
        ctx.repo.set_charger(charger.id, v2g_site_id=None)
    area = ctx.repo.grid_area(file.sites[0].grid_area_id) if file.sites else None
    if area is not None and area.dso_org_id:
        ctx.notify(
            "V2G site id removed", f"V2G site id(s) {removed} removed for {area.id}.", organisation_id=area.dso_org_id
        )
    return ServiceOutcome.done({"removed": removed})


def export_customer_data(ctx: ServiceContext) -> ServiceOutcome:
    """Build the data export and tell the owner it is ready."""
    data = build_export(ctx.repo, ctx.journey, ctx.now)
    file = ctx.repo.customer_file(ctx.journey.customer_id)
    ctx.notify(
        "Your data export is ready",
        f"Download it from /api/v1/journeys/{ctx.journey.id}/export ({len(data)} bytes).",
        channel="email",
        address=file.customer.email,
    )
    return ServiceOutcome.done({"export_bytes": len(data), "path": f"/api/v1/journeys/{ctx.journey.id}/export"})


JOURNEY_HANDLERS = {
    "check_vehicle_compatibility": check_vehicle_compatibility,
    "list_certified_wallboxes": list_certified_wallboxes,
    "dso_feasibility_indication": dso_feasibility_indication,
    "prepare_service_agreement": prepare_service_agreement,
    "publish_status_tracker": publish_status_tracker,
    "generate_box_site_id": generate_box_site_id,
    "verify_connectivity": verify_connectivity,
    "activate_v2g_service": activate_v2g_service,
    "notify_tso": notify_tso,
    "notify_bsp": notify_bsp,
    "deactivate_charger": deactivate_charger,
    "remove_v2g_site_id": remove_v2g_site_id,
    "export_customer_data": export_customer_data,
}


def default_registry() -> ServiceRegistry:
    """A registry with the journey area's handlers; other areas add theirs in bootstrap."""
    registry = ServiceRegistry()
    for name, handler in JOURNEY_HANDLERS.items():
        registry.register(name, handler)
    return registry
