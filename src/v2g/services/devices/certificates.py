"""Security profile 3: charger certificates from the platform CA, admitted at the handshake, renewed.

* **Issue.** A charger's first certificate comes from a CSR its installer hands in
  (``v2g charger issue-certificate``); later ones from the charger's own OCPP ``SignCertificate``.
  Either way the CSR is checked (certificate type, CN = the charger id, O = the operator if given,
  key type and size, signature) before the CA signs, and every certificate is recorded.
* **Admit.** The CSMS's profile-3 listener has already verified the chain against the CA; the
  handshake then needs the CN to be the charger id in the URL and the certificate to be on record
  for that charger and not revoked.
* **Renew.** A charger may send ``SignCertificate`` at any time; the CSMS also asks for one
  (TriggerMessage ``SignChargingStationCertificate``, 1.6 ExtendedTriggerMessage
  ``SignChargePointCertificate``) when the certificate it connected with expires within
  ``renew_before``. The signed chain goes back with ``CertificateSigned`` and the charger's answer
  is kept on the certificate's record. The old certificate stays valid until it expires or is
  revoked, so a charger that refuses the new chain keeps connecting.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from v2g.devices import (
    STATION_CERTIFICATE,
    CertificateRecord,
    CertificateRequestError,
    CertificateStatus,
    CommandResult,
    CsrRefusal,
    DeviceError,
    IssuedCertificate,
    PresentedCertificate,
    normalise_serial,
    renewal_due,
)
from v2g.services.clock import Clock, SystemClock
from v2g.services.devices.ports import CertificateIssuer, CertificateLink, CertificateStore

log = logging.getLogger("v2g.devices")

REQUESTED_BY_OPERATOR = "operator"
REQUESTED_BY_STATION = "station"
_ANSWERS = {"accepted": CertificateStatus.ACCEPTED, "rejected": CertificateStatus.REJECTED}


class StationCertificates:
    """Issues, admits and renews charger certificates (see the module docstring)."""

    def __init__(
        self,
        issuer: CertificateIssuer,
        store: CertificateStore,
        *,
        clock: Clock | None = None,
        renew_before: timedelta = timedelta(days=30),
        max_station_requests_per_day: int = 10,
    ) -> None:
        self.issuer = issuer
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.renew_before = renew_before
        self.max_station_requests_per_day = max_station_requests_per_day

    @property
    def organisation(self) -> str:
        return self.issuer.organisation

    # ------------------------------------------------------------------ issue
    def check_request(
        self,
        charger_id: str,
        csr_pem: str,
        certificate_type: str = STATION_CERTIFICATE,
        *,
        requested_via: str = REQUESTED_BY_STATION,
    ) -> None:
        """Refuse a request that will not be signed (raises :class:`CertificateRequestError`)."""
        if certificate_type != STATION_CERTIFICATE:
            msg = (
                f"certificateType: {certificate_type} is not issued by the platform CA "
                f"(only {STATION_CERTIFICATE}; ISO 15118 certificates come from the V2G PKI)"
            )
            raise CertificateRequestError(CsrRefusal.CERTIFICATE_TYPE, msg)
        if requested_via == REQUESTED_BY_STATION:
            since = self.clock.now() - timedelta(days=1)
            if self.store.certificates_issued_since(charger_id, since) >= self.max_station_requests_per_day:
                msg = f"csr: {self.max_station_requests_per_day} certificates were issued to {charger_id} in 24 h"
                raise CertificateRequestError(CsrRefusal.TOO_MANY, msg)
        self.issuer.check_station_csr(charger_id, csr_pem)

    def issue(self, charger_id: str, csr_pem: str, *, requested_via: str) -> IssuedCertificate:
        """Check the CSR, sign it and record the certificate (runs in a worker thread)."""
        if requested_via not in (REQUESTED_BY_OPERATOR, REQUESTED_BY_STATION):
            msg = f"requested_via: {requested_via!r} is not one of operator, station"
            raise DeviceError(msg)
        self.check_request(charger_id, csr_pem, requested_via=requested_via)
        issued = self.issuer.issue_station_certificate(charger_id, csr_pem)
        self.store.record_certificate(issued, issued_at=self.clock.now(), requested_via=requested_via)
        log.info(
            "charger[%s]: certificate %s issued (valid to %s, requested by the %s)",
            charger_id,
            issued.serial_hex,
            issued.not_after.isoformat(),
            requested_via,
        )
        return issued

    # ------------------------------------------------------------------ admit
    def admit(self, charger_id: str, presented: PresentedCertificate) -> str | None:
        """Why the client certificate may not open a connection for ``charger_id`` (None: it may)."""
        serial = normalise_serial(presented.serial_hex)
        if presented.common_name != charger_id:
            return f"client certificate {serial} has CN {presented.common_name!r}, not the charger id"
        record = self.store.certificate_by_fingerprint(presented.fingerprint_sha256)
        if record is None:
            return f"client certificate {serial} is not on record (not issued by this platform)"
        if record.charger_id != charger_id:
            return f"client certificate {serial} was issued to another charger"
        if record.revoked_at is not None:
            return f"client certificate {serial} was revoked at {record.revoked_at.isoformat()}"
        self.store.mark_certificate_used(presented.fingerprint_sha256, self.clock.now())
        return None

    def renewal_due(self, presented: PresentedCertificate) -> bool:
        """Whether the certificate a charger connected with should be renewed now."""
        return renewal_due(presented.not_after, self.clock.now(), self.renew_before)

    # ------------------------------------------------------------------ renew over OCPP
    async def sign_and_install(self, link: CertificateLink, csr_pem: str) -> CommandResult:
        """After an accepted SignCertificate: sign, send CertificateSigned, keep the charger's answer."""
        try:
            issued = await asyncio.to_thread(self.issue, link.id, csr_pem, requested_via=REQUESTED_BY_STATION)
        except CertificateRequestError as exc:  # e.g. the daily limit was reached meanwhile
            log.warning("charger[%s]: certificate not issued (%s): %s", link.id, exc.reason.value, exc.detail)
            return CommandResult("rejected", exc.detail)
        result = await link.install_certificate(issued.chain_pem)
        status = _ANSWERS.get(result.status, CertificateStatus.FAILED)
        detail = result.detail or (None if status is not CertificateStatus.FAILED else result.status)
        await asyncio.to_thread(self.store.set_certificate_status, issued.serial_hex, status, detail, self.clock.now())
        level = logging.INFO if status is CertificateStatus.ACCEPTED else logging.WARNING
        log.log(level, "charger[%s]: CertificateSigned %s -> %s", link.id, issued.serial_hex, result.status)
        return result

    async def request_renewal(self, link: CertificateLink) -> CommandResult:
        """Ask the charger for a SignCertificate (CSMS-initiated renewal)."""
        result = await link.request_certificate()
        log.info("charger[%s]: certificate renewal requested -> %s", link.id, result.status)
        return result

    def certificates(self, charger_id: str) -> list[CertificateRecord]:
        return self.store.certificates(charger_id)
