"""The platform's certificate authority for OCPP security profile 3 (X.509 with ``cryptography``)."""

from v2g.adapters.pki.ca import CaPolicy, PlatformCa, mtls_server_context

__all__ = ["CaPolicy", "PlatformCa", "mtls_server_context"]
