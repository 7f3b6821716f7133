"""Actors: the people and organisations the platform acts for, how they sign in, and the records
kept about what they did (audit log) and what they were told (outbox)."""
