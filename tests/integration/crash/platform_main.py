"""The platform as ``v2g serve`` runs it, on a clock shifted by ``CRASH_CLOCK_OFFSET_S`` seconds.

The crash tests start this file as a child process: the product's composition root
(:func:`v2g.bootstrap.bootstrap`, settings from ``V2G_*``) and the same serving coroutine as
``v2g serve`` (API, CSMS, scheduled jobs, frequency dispatch), with time running at real pace but
shifted so that a test always starts at the same minute of an hour (an hour boundary or a
quarter-hourly planning run never falls inside a test). Every start of the process gets the same
offset, so a restarted platform continues the timeline of the one that was killed.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from v2g.adapters.clock import AcceleratedClock
from v2g.bootstrap import bootstrap
from v2g.cli.server import serve_platform
from v2g.config import Settings
from v2g.log import configure_logging
from v2g.units import utc_now


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    offset = timedelta(seconds=float(os.environ["CRASH_CLOCK_OFFSET_S"]))
    platform = bootstrap(settings, clock=AcceleratedClock(1.0, utc_now() + offset))
    asyncio.run(serve_platform(platform, settings.host, settings.port, demo=False))


if __name__ == "__main__":
    main()
