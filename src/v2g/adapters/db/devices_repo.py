"""Device-layer persistence: credentials, connection state, profiles, transactions, telemetry.

All writes that can arrive twice (meter values, transaction events) are ``INSERT ... ON CONFLICT DO
NOTHING`` on their natural key, so a duplicate or re-sent message is stored exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, String, Table, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from v2g.adapters.db.fleet_repo import NotFoundError
from v2g.adapters.db.tables.devices import (
    charger_certificates,
    charger_credentials,
    charger_events,
    charger_profiles,
    charger_state,
    charging_transactions,
    ev_charging_needs,
    id_tokens,
    telemetry,
    transaction_events,
)
from v2g.adapters.db.tables.fleet import chargers, sites
from v2g.devices import (
    CertificateRecord,
    CertificateStatus,
    ChargerAuth,
    ChargerNotice,
    ChargingNeeds,
    ConnectivityStatus,
    IdTokenRecord,
    IssuedCertificate,
    MeterSample,
    TelemetryBatchResult,
    TokenStatus,
    TransactionEventIn,
    check_security_profile,
    normalise_serial,
)
from v2g.fleet.model import Charger, ChargerProtocol
from v2g.services.clock import Clock, SystemClock
from v2g.services.dispatch.measured import LatestReading

MAX_NOTICE_PAYLOAD_CHARS = 64_000
POWER_MEASURANDS = frozenset({"Power.Active.Import", "Power.Active.Export"})


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """An insert that skips rows whose primary key already exists, on SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


BatchResult = TelemetryBatchResult  # what a telemetry batch stored (duplicates are counted, not stored)


class SqlCredentialStore:
    """Charger credentials within the caller's transaction (the journey's automated tasks)."""

    def __init__(self, conn: Connection, *, clock: Clock | None = None) -> None:
        self.conn = conn
        self.clock: Clock = clock or SystemClock()

    def has_credentials(self, charger_id: str) -> bool:
        query = select(charger_credentials.c.charger_id).where(charger_credentials.c.charger_id == charger_id)
        return self.conn.execute(query).first() is not None

    def add_credentials(self, charger_id: str, password_hash: str, security_profile: int) -> None:
        self.conn.execute(
            charger_credentials.insert().values(
                charger_id=charger_id,
                password_hash=password_hash,
                security_profile=security_profile,
                created_at=self.clock.now(),
            )
        )
        self.conn.execute(
            insert_ignore(self.conn, charger_state).values(charger_id=charger_id, online=False, ev_connected=False)
        )


class SqlDeviceStore:
    """Synchronous store over an engine; the CSMS calls it from worker threads."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()

    # ------------------------------------------------------------------ registration / credentials
    def add_charger_with_credentials(self, charger: Charger, password_hash: str, security_profile: int) -> None:
        values = asdict(charger)
        values.pop("tags")
        with self.engine.begin() as conn:
            if conn.execute(select(chargers.c.id).where(chargers.c.id == charger.id)).first() is not None:
                msg = f"charger[{charger.id}].id: already registered"
                raise ValueError(msg)
            conn.execute(chargers.insert().values(**values))
            conn.execute(
                charger_credentials.insert().values(
                    charger_id=charger.id,
                    password_hash=password_hash,
                    security_profile=security_profile,
                    created_at=self.clock.now(),
                )
            )
            conn.execute(charger_state.insert().values(charger_id=charger.id, online=False, ev_connected=False))

    def set_credentials(self, charger_id: str, password_hash: str, security_profile: int) -> None:
        """Create or replace a charger's credentials (password rotation)."""
        with self.engine.begin() as conn:
            self._require_charger(conn, charger_id)
            conn.execute(delete(charger_credentials).where(charger_credentials.c.charger_id == charger_id))
            conn.execute(
                charger_credentials.insert().values(
                    charger_id=charger_id,
                    password_hash=password_hash,
                    security_profile=security_profile,
                    created_at=self.clock.now(),
                )
            )
            conn.execute(
                insert_ignore(conn, charger_state).values(charger_id=charger_id, online=False, ev_connected=False)
            )

    def auth(self, charger_id: str) -> ChargerAuth | None:
        """Credentials and status of a charger, or None if it is unknown or has no credentials."""
        query = (
            select(
                chargers.c.id,
                chargers.c.active,
                chargers.c.protocol,
                charger_credentials.c.password_hash,
                charger_credentials.c.security_profile,
                charger_credentials.c.also_allowed_protocols,
            )
            .join(charger_credentials, charger_credentials.c.charger_id == chargers.c.id)
            .where(chargers.c.id == charger_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        also = frozenset(ChargerProtocol(p) for p in (row.also_allowed_protocols or "").split(",") if p)
        return ChargerAuth(
            row.id, row.password_hash, row.security_profile, row.active, ChargerProtocol(row.protocol), also
        )

    def allow_protocols(self, charger_id: str, protocols: Iterable[ChargerProtocol]) -> None:
        """Let a charger also connect with these OCPP versions besides its registered one."""
        value = ",".join(sorted(ChargerProtocol(p).value for p in protocols)) or None
        with self.engine.begin() as conn:
            self._require_charger(conn, charger_id)
            conn.execute(
                update(charger_credentials)
                .where(charger_credentials.c.charger_id == charger_id)
                .values(also_allowed_protocols=value)
            )

    def set_security_profile(self, charger_id: str, profile: int) -> int:
        """Raise a charger's security profile (never lower it); returns the profile it had."""
        with self.engine.begin() as conn:
            self._require_charger(conn, charger_id)
            current = conn.execute(
                select(charger_credentials.c.security_profile).where(charger_credentials.c.charger_id == charger_id)
            ).scalar_one_or_none()
            if current is None:
                msg = f"charger {charger_id!r} has no credentials"
                raise NotFoundError(msg)
            check_security_profile(profile, current=int(current))
            conn.execute(
                update(charger_credentials)
                .where(charger_credentials.c.charger_id == charger_id)
                .values(security_profile=profile)
            )
        return int(current)

    # ------------------------------------------------------------------ certificates (security profile 3)
    def record_certificate(self, certificate: IssuedCertificate, *, issued_at: datetime, requested_via: str) -> None:
        """Keep a certificate the platform CA issued (status ``issued``)."""
        with self.engine.begin() as conn:
            self._require_charger(conn, certificate.charger_id)
            conn.execute(
                charger_certificates.insert().values(
                    serial_hex=certificate.serial_hex,
                    charger_id=certificate.charger_id,
                    fingerprint_sha256=certificate.fingerprint_sha256,
                    not_before=certificate.not_before,
                    not_after=certificate.not_after,
                    issued_at=issued_at,
                    requested_via=requested_via,
                    status=CertificateStatus.ISSUED.value,
                    certificate_pem=certificate.certificate_pem,
                )
            )

    def set_certificate_status(
        self, serial_hex: str, status: CertificateStatus, detail: str | None, at: datetime
    ) -> None:
        """The charger's answer to CertificateSigned (a revoked certificate stays revoked)."""
        c = charger_certificates.c
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_certificates)
                .where(c.serial_hex == normalise_serial(serial_hex), c.revoked_at.is_(None))
                .values(status=CertificateStatus(status).value, status_detail=detail, status_at=at)
            )

    def certificate_by_fingerprint(self, fingerprint_sha256: str) -> CertificateRecord | None:
        query = select(charger_certificates).where(charger_certificates.c.fingerprint_sha256 == fingerprint_sha256)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _certificate_record(row)

    def certificates(self, charger_id: str) -> list[CertificateRecord]:
        """A charger's certificates, newest first."""
        c = charger_certificates.c
        query = select(charger_certificates).where(c.charger_id == charger_id).order_by(c.issued_at.desc())
        with self.engine.connect() as conn:
            self._require_charger(conn, charger_id)
            return [_certificate_record(r) for r in conn.execute(query).mappings()]

    def certificate_pem(self, charger_id: str, serial_hex: str) -> str:
        """One of the charger's certificates, PEM."""
        c = charger_certificates.c
        query = select(c.certificate_pem).where(
            c.charger_id == charger_id, c.serial_hex == normalise_serial(serial_hex)
        )
        with self.engine.connect() as conn:
            pem = conn.execute(query).scalar_one_or_none()
        if pem is None:
            msg = f"charger {charger_id!r} has no certificate {serial_hex!r}"
            raise NotFoundError(msg)
        return str(pem)

    def certificates_issued_since(self, charger_id: str, since: datetime) -> int:
        c = charger_certificates.c
        query = (
            select(func.count())
            .select_from(charger_certificates)
            .where(c.charger_id == charger_id, c.issued_at >= since)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def mark_certificate_used(self, fingerprint_sha256: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_certificates)
                .where(charger_certificates.c.fingerprint_sha256 == fingerprint_sha256)
                .values(last_used_at=at)
            )

    def revoke_certificate(self, charger_id: str, serial_hex: str, at: datetime) -> CertificateRecord:
        """Revoke one of the charger's certificates: the CSMS refuses it at every later handshake."""
        c = charger_certificates.c
        key = (c.charger_id == charger_id, c.serial_hex == normalise_serial(serial_hex))
        with self.engine.begin() as conn:
            self._require_charger(conn, charger_id)
            changed = conn.execute(
                update(charger_certificates)
                .where(*key, c.revoked_at.is_(None))
                .values(revoked_at=at, status=CertificateStatus.REVOKED.value, status_at=at)
            ).rowcount
            row = conn.execute(select(charger_certificates).where(*key)).mappings().first()
        if row is None:
            msg = f"charger {charger_id!r} has no certificate {serial_hex!r}"
            raise NotFoundError(msg)
        if not changed:
            msg = f"certificate {serial_hex!r} of charger {charger_id!r} was already revoked"
            raise ValueError(msg)
        return _certificate_record(row)

    # ------------------------------------------------------------------ idTokens
    def add_id_token(self, record: IdTokenRecord) -> None:
        """Register a token for a charger or a customer (an existing registration gets the new status)."""
        t = id_tokens.c
        scope = (
            t.id_token == record.id_token,
            t.charger_id.is_(None) if record.charger_id is None else t.charger_id == record.charger_id,
            t.customer_id.is_(None) if record.customer_id is None else t.customer_id == record.customer_id,
        )
        with self.engine.begin() as conn:
            if record.charger_id is not None:
                self._require_charger(conn, record.charger_id)
            changed = conn.execute(update(id_tokens).where(*scope).values(status=record.status.value)).rowcount
            if not changed:
                conn.execute(
                    id_tokens.insert().values(
                        id_token=record.id_token,
                        charger_id=record.charger_id,
                        customer_id=record.customer_id,
                        status=record.status.value,
                        created_at=self.clock.now(),
                    )
                )

    def id_token_records(self, id_token: str) -> list[IdTokenRecord]:
        """Every registration of a token."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(id_tokens).where(id_tokens.c.id_token == id_token)).all()
        return [IdTokenRecord(r.id_token, TokenStatus(r.status), r.charger_id, r.customer_id) for r in rows]

    def customer_of(self, charger_id: str) -> str | None:
        """The customer whose site the charger is at."""
        query = select(sites.c.customer_id).join(chargers, chargers.c.site_id == sites.c.id)
        with self.engine.connect() as conn:
            return conn.execute(query.where(chargers.c.id == charger_id)).scalar_one_or_none()

    def charger(self, charger_id: str) -> Charger:
        with self.engine.connect() as conn:
            row = conn.execute(select(chargers).where(chargers.c.id == charger_id)).mappings().first()
        if row is None:
            msg = f"charger {charger_id!r} not found"
            raise NotFoundError(msg)
        return Charger(**{**dict(row), "protocol": ChargerProtocol(row["protocol"])})

    def inactive_among(self, charger_ids: Sequence[str]) -> list[str]:
        """Those of ``charger_ids`` that are marked inactive (or no longer exist)."""
        ids = list(charger_ids)
        with self.engine.connect() as conn:
            active = {
                r.id
                for r in conn.execute(select(chargers.c.id).where(chargers.c.id.in_(ids), chargers.c.active.is_(True)))
            }
        return [cid for cid in ids if cid not in active]

    def set_active(self, charger_id: str, active: bool) -> None:
        with self.engine.begin() as conn:
            self._require_charger(conn, charger_id)
            conn.execute(update(chargers).where(chargers.c.id == charger_id).values(active=active))

    # ------------------------------------------------------------------ connection state
    def mark_connected(self, charger_id: str, protocol: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(conn, charger_state).values(charger_id=charger_id, online=False, ev_connected=False)
            )
            conn.execute(
                update(charger_state)
                .where(charger_state.c.charger_id == charger_id)
                .values(online=True, protocol=protocol, connected_at=at, last_seen_at=at)
            )

    def mark_disconnected(self, charger_id: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_state)
                .where(charger_state.c.charger_id == charger_id)
                .values(online=False, disconnected_at=at)
            )

    def mark_offline_if_silent(self, before: datetime, at: datetime) -> list[str]:
        """Mark chargers whose last message is older than ``before`` as offline; return their ids."""
        with self.engine.begin() as conn:
            ids = [
                r.charger_id
                for r in conn.execute(
                    select(charger_state.c.charger_id).where(
                        charger_state.c.online.is_(True), charger_state.c.last_seen_at < before
                    )
                )
            ]
            if ids:
                conn.execute(
                    update(charger_state)
                    .where(charger_state.c.charger_id.in_(ids))
                    .values(online=False, disconnected_at=at)
                )
        return ids

    def touch_many(self, last_seen: dict[str, datetime]) -> None:
        """Record the last message time of many chargers at once."""
        if not last_seen:
            return
        with self.engine.begin() as conn:
            for charger_id, at in last_seen.items():
                conn.execute(
                    update(charger_state).where(charger_state.c.charger_id == charger_id).values(last_seen_at=at)
                )

    def mark_booted(self, charger_id: str, at: datetime, firmware_version: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_state)
                .where(charger_state.c.charger_id == charger_id)
                .values(booted_at=at, firmware_version=firmware_version, last_seen_at=at)
            )

    def set_discharge_supported(self, charger_id: str, supported: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_state)
                .where(charger_state.c.charger_id == charger_id)
                .values(discharge_supported=supported)
            )

    def record_profile(
        self,
        charger_id: str,
        *,
        profile_id: int,
        purpose: str,
        sent_at: datetime,
        valid_to: datetime | None,
        status: str,
        detail: str = "",
        test_profile: bool = False,
    ) -> None:
        """Remember a profile and the charger's answer; an accepted test profile verifies connectivity."""
        with self.engine.begin() as conn:
            conn.execute(
                charger_profiles.insert().values(
                    charger_id=charger_id,
                    profile_id=profile_id,
                    purpose=purpose,
                    sent_at=sent_at,
                    valid_to=valid_to,
                    status=status,
                    detail=detail or None,
                )
            )
            values: dict[str, Any] = {
                "last_profile_status": status,
                "last_profile_detail": detail or None,
                "last_profile_at": sent_at,
            }
            if test_profile and status == "accepted":
                values["verified_at"] = sent_at
            conn.execute(update(charger_state).where(charger_state.c.charger_id == charger_id).values(**values))

    def connectivity(self, charger_id: str) -> ConnectivityStatus:
        with self.engine.connect() as conn:
            self._require_charger(conn, charger_id)
            row = conn.execute(select(charger_state).where(charger_state.c.charger_id == charger_id)).first()
        if row is None:
            return ConnectivityStatus(charger_id, None, None, online=False)
        return ConnectivityStatus(charger_id, row.booted_at, row.verified_at, online=row.online)

    def state(self, charger_id: str) -> dict[str, Any]:
        """The latest known state of a charger and the EV behind it."""
        with self.engine.connect() as conn:
            self._require_charger(conn, charger_id)
            row = conn.execute(select(charger_state).where(charger_state.c.charger_id == charger_id)).mappings().first()
            needs = conn.execute(
                select(ev_charging_needs).where(ev_charging_needs.c.charger_id == charger_id)
            ).mappings()
            needs_rows = [dict(n) for n in needs]
            profile = conn.execute(
                select(charger_credentials.c.security_profile).where(charger_credentials.c.charger_id == charger_id)
            ).scalar_one_or_none()
        state: dict[str, Any] = dict(row) if row is not None else {"charger_id": charger_id, "online": False}
        state["ev_needs"] = needs_rows
        state["security_profile"] = profile
        state["certificates"] = [
            {k: v for k, v in asdict(r).items() if k != "charger_id"} for r in self.certificates(charger_id)
        ]
        return state

    def latest_readings(self, charger_ids: Sequence[str]) -> dict[str, LatestReading]:
        """The latest power and SoC of these chargers, in one query (unknown ids are left out)."""
        if not charger_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    charger_state.c.charger_id,
                    charger_state.c.p_kw,
                    charger_state.c.soc_percent,
                    charger_state.c.measured_at,
                    charger_state.c.online,
                ).where(charger_state.c.charger_id.in_(list(charger_ids)))
            )
            return {r.charger_id: LatestReading(r.p_kw, r.soc_percent, r.measured_at, bool(r.online)) for r in rows}

    def offline_chargers(self) -> list[str]:
        """Ids of the active chargers not connected now (never connected counts as offline)."""
        online = charger_state.c.online
        query = (
            select(chargers.c.id)
            .outerjoin(charger_state, charger_state.c.charger_id == chargers.c.id)
            .where(chargers.c.active.is_(True), or_(online.is_(None), online.is_(False)))
            .order_by(chargers.c.id)
        )
        with self.engine.connect() as conn:
            return [str(r.id) for r in conn.execute(query)]

    def profiles(self, charger_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(charger_profiles)
                .where(charger_profiles.c.charger_id == charger_id)
                .order_by(charger_profiles.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # ------------------------------------------------------------------ what chargers report
    def record_notice(self, notice: ChargerNotice, received_at: datetime) -> None:
        """Keep a charger's notice; a payload above 64 kB is stored as its size only."""
        payload = json.dumps(notice.payload, default=str, ensure_ascii=False)
        if len(payload) > MAX_NOTICE_PAYLOAD_CHARS:
            payload = json.dumps({"truncated": True, "chars": len(payload)})
        with self.engine.begin() as conn:
            conn.execute(
                charger_events.insert().values(
                    charger_id=notice.charger_id,
                    kind=notice.kind[:48],
                    occurred_at=notice.occurred_at,
                    received_at=received_at,
                    summary=notice.summary[:400],
                    payload_json=payload,
                )
            )

    def notices(self, charger_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """A charger's notices, oldest first (payload decoded)."""
        query = select(charger_events).where(charger_events.c.charger_id == charger_id)
        if kind:
            query = query.where(charger_events.c.kind == kind)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query.order_by(charger_events.c.id)).mappings()]
        for row in rows:
            row["payload"] = json.loads(row.pop("payload_json"))
        return rows

    def set_charging_limit(self, charger_id: str, limit_kw: float | None, source: str | None, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_state)
                .where(charger_state.c.charger_id == charger_id)
                .values(charging_limit_kw=limit_kw, charging_limit_source=source, charging_limit_at=at)
            )

    # ------------------------------------------------------------------ EV needs
    def save_needs(self, needs: ChargingNeeds) -> None:
        values = asdict(needs)
        with self.engine.begin() as conn:
            conn.execute(
                delete(ev_charging_needs).where(
                    ev_charging_needs.c.charger_id == needs.charger_id, ev_charging_needs.c.evse_id == needs.evse_id
                )
            )
            conn.execute(ev_charging_needs.insert().values(**values))

    def needs(self, charger_id: str) -> list[ChargingNeeds]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ev_charging_needs).where(ev_charging_needs.c.charger_id == charger_id))
            return [ChargingNeeds(**dict(r._mapping)) for r in rows]

    def stored_needs(self, charger_id: str) -> list[ChargingNeeds]:
        """The last needs each EVSE of the charger reported (the supervisor's port name)."""
        return self.needs(charger_id)

    # ------------------------------------------------------------------ telemetry and transactions
    def write_batch(
        self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn], received_at: datetime
    ) -> BatchResult:
        """Store samples and transaction events in one database transaction; duplicates are skipped.

        Everything is set-based (executemany), so a batch from thousands of chargers costs a handful
        of statements, not a few per row.
        """
        stored = ev_stored = 0
        with self.engine.begin() as conn:
            if samples:
                rows = _dedupe_samples(samples)
                result = conn.execute(insert_ignore(conn, telemetry).returning(telemetry.c.measurand), rows)
                stored = len(result.all())
                self._update_latest(conn, samples)
            if events:
                ev_stored = self._store_events(conn, events, received_at)
        return BatchResult(stored, len(samples) - stored, ev_stored, len(events) - ev_stored)

    def _store_events(self, conn: Connection, events: Sequence[TransactionEventIn], received_at: datetime) -> int:
        unique: dict[tuple[str, str, int], TransactionEventIn] = {}
        for e in events:
            unique.setdefault((e.charger_id, e.transaction_id, e.seq_no), e)
        rows = [
            {
                "charger_id": e.charger_id,
                "transaction_id": e.transaction_id,
                "seq_no": e.seq_no,
                "event_type": e.event_type,
                "trigger_reason": e.trigger_reason,
                "offline": e.offline,
                "occurred_at": e.occurred_at,
                "received_at": received_at,
            }
            for e in unique.values()
        ]
        te = transaction_events.c
        inserted = conn.execute(
            insert_ignore(conn, transaction_events).returning(te.charger_id, te.transaction_id, te.seq_no), rows
        ).all()
        new = [unique[(r.charger_id, r.transaction_id, r.seq_no)] for r in inserted]
        if not new:
            return 0  # every (transaction, seqNo) was seen before: duplicates, nothing is counted twice
        by_tx: dict[tuple[str, str], list[TransactionEventIn]] = {}
        for e in new:
            by_tx.setdefault((e.charger_id, e.transaction_id), []).append(e)
        conn.execute(
            insert_ignore(conn, charging_transactions),
            [
                {"charger_id": c, "transaction_id": t, "evse_id": es[0].evse_id, "events_seen": 0}
                for (c, t), es in by_tx.items()
            ],
        )
        tx = charging_transactions.c
        counters = (
            update(charging_transactions)
            .where(tx.charger_id == bindparam("b_charger"), tx.transaction_id == bindparam("b_tx"))
            .values(
                events_seen=tx.events_seen + bindparam("b_count"),
                max_seq_no=case(
                    (or_(tx.max_seq_no.is_(None), tx.max_seq_no < bindparam("b_seq")), bindparam("b_seq")),
                    else_=tx.max_seq_no,
                ),
                id_token=func.coalesce(tx.id_token, bindparam("b_token", type_=String)),
            )
        )
        conn.execute(
            counters,
            [
                {
                    "b_charger": c,
                    "b_tx": t,
                    "b_count": len(es),
                    "b_seq": max(e.seq_no for e in es),
                    "b_token": next((e.id_token for e in es if e.id_token), None),
                }
                for (c, t), es in by_tx.items()
            ],
        )
        for e in new:  # start and end are rare: one statement each
            key = (tx.charger_id == e.charger_id, tx.transaction_id == e.transaction_id)
            if e.event_type == "Started":
                conn.execute(
                    update(charging_transactions)
                    .where(*key)
                    .values(started_at=e.occurred_at, meter_start_wh=e.meter_wh)
                )
            elif e.event_type == "Ended":
                conn.execute(
                    update(charging_transactions)
                    .where(*key)
                    .values(ended_at=e.occurred_at, meter_stop_wh=e.meter_wh, stop_reason=e.stop_reason)
                )
        return len(new)

    def _update_latest(self, conn: Connection, samples: Sequence[MeterSample]) -> None:
        latest: dict[str, dict[str, Any]] = {}
        power: dict[tuple[str, datetime], dict[str, float]] = {}
        for s in sorted(samples, key=lambda s: s.measured_at):
            values = latest.setdefault(s.charger_id, {})
            if s.measurand in POWER_MEASURANDS:
                kw = s.value * (0.001 if s.unit == "W" else 1.0)
                parts = power.setdefault((s.charger_id, s.measured_at), {})
                parts[s.measurand] = kw
                # import minus export at the same instant: p_kw > 0 charges, < 0 discharges
                values["p_kw"] = parts.get("Power.Active.Import", 0.0) - parts.get("Power.Active.Export", 0.0)
            elif s.measurand == "SoC":
                values["soc_percent"] = s.value
            elif s.measurand == "Energy.Active.Import.Register":
                values["energy_import_wh"] = s.value * (1000.0 if s.unit == "kWh" else 1.0)
            elif s.measurand == "Energy.Active.Export.Register":
                values["energy_export_wh"] = s.value * (1000.0 if s.unit == "kWh" else 1.0)
            values["measured_at"] = s.measured_at
        conn.execute(
            insert_ignore(conn, charger_state),
            [{"charger_id": cid, "online": False, "ev_connected": False} for cid in latest],
        )
        state = charger_state.c
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for charger_id, values in latest.items():
            keys = tuple(sorted(values))
            groups.setdefault(keys, []).append({"b_charger": charger_id, **{f"b_{k}": v for k, v in values.items()}})
        for keys, rows in groups.items():
            statement = (
                update(charger_state)
                .where(
                    state.charger_id == bindparam("b_charger"),
                    or_(state.measured_at.is_(None), state.measured_at <= bindparam("b_measured_at")),
                )
                .values(**{k: bindparam(f"b_{k}") for k in keys})
            )
            conn.execute(statement, rows)

    def set_ev_connected(self, charger_id: str, connected: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(charger_state).where(charger_state.c.charger_id == charger_id).values(ev_connected=connected)
            )

    def transactions(self, charger_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(charging_transactions).where(charging_transactions.c.charger_id == charger_id)
            ).mappings()
            result = [dict(r) for r in rows]
        for row in result:
            row["seq_gaps"] = (row["max_seq_no"] + 1 - row["events_seen"]) if row["max_seq_no"] is not None else 0
        return result

    def transaction_events(self, charger_id: str, transaction_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(transaction_events)
                .where(
                    transaction_events.c.charger_id == charger_id,
                    transaction_events.c.transaction_id == transaction_id,
                )
                .order_by(transaction_events.c.seq_no)
            ).mappings()
            return [dict(r) for r in rows]

    def telemetry(
        self,
        charger_id: str,
        *,
        measurand: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[MeterSample]:
        """History of one charger's samples, oldest first."""
        t = telemetry.c
        query = select(telemetry).where(t.charger_id == charger_id)
        if measurand:
            query = query.where(t.measurand == measurand)
        if since:
            query = query.where(t.measured_at >= since)
        if until:
            query = query.where(t.measured_at < until)
        query = query.order_by(t.measured_at, t.measurand).limit(limit)
        with self.engine.connect() as conn:
            return [MeterSample(**dict(r._mapping)) for r in conn.execute(query)]

    def purge_telemetry(self, before: datetime) -> int:
        """Retention: delete samples measured before ``before``; return how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(telemetry).where(telemetry.c.measured_at < before)).rowcount

    # ------------------------------------------------------------------ helpers
    def _require_charger(self, conn: Connection, charger_id: str) -> None:
        if conn.execute(select(chargers.c.id).where(chargers.c.id == charger_id)).first() is None:
            msg = f"charger {charger_id!r} not found"
            raise NotFoundError(msg)


def _certificate_record(row: Any) -> CertificateRecord:
    return CertificateRecord(
        serial_hex=row["serial_hex"],
        charger_id=row["charger_id"],
        fingerprint_sha256=row["fingerprint_sha256"],
        not_before=row["not_before"],
        not_after=row["not_after"],
        issued_at=row["issued_at"],
        requested_via=row["requested_via"],
        status=CertificateStatus(row["status"]),
        status_detail=row["status_detail"],
        status_at=row["status_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _dedupe_samples(samples: Iterable[MeterSample]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, int, str, datetime], dict[str, Any]] = {}
    for s in samples:
        rows.setdefault((s.charger_id, s.evse_id, s.measurand, s.measured_at), asdict(s))
    return list(rows.values())
