"""Journey use cases: a customer's way through the service blueprint, from sign-up to termination.

``service.JourneyService`` is the public entry point; the use cases live one module each beside it.
"""
