"""Patches of third-party libraries shared by the adapters and the simulator.

``ocpp_keys``: the ``ocpp`` 2.1 key-case fix and memoised key conversion; ``ocpp_validation``:
cached schema validators. Both are installed idempotently by whoever speaks OCPP.
``ocpp_logging``: the library's per-connection logger, with frames at DEBUG only.
"""
