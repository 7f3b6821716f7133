"""IEC 61850 (MMS) server for the control centre of a DSO or TSO."""
