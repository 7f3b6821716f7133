"""V2G service platform: the V2G service blueprint as code, run for real.

Packages, from the outside in (see docs/architecture.md):

* ``cli``, ``api``, ``web``: entry points (Typer, FastAPI, portal pages).
* ``bootstrap``: the one place that wires concrete adapters from settings.
* ``adapters``: database, OCPP, OpenADR and data feeds; ``sim``: the digital twin.
* ``services``: use cases combining the pure cores with ports.
* ``journey``, ``markets``, ``dispatch``, ``prequal``, ``settlement``, ``blueprint``, ``planning``:
  pure cores with no I/O.
* ``fleet``: domain objects; ``units`` and ``config``: helpers and settings.
"""

__version__ = "0.1.0"
