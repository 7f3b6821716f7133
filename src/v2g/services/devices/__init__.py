"""Device services: installation hooks, journey handlers and the device supervisor, with their ports.

The rules themselves live in the pure core :mod:`v2g.devices`.
"""
