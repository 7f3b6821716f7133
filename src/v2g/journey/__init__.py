"""The service journey engine (pure core): journeys, tasks, gates, SLAs, status tracker, checks, KPIs."""
