"""IEC 61850 server tests against an independent MMS client."""
