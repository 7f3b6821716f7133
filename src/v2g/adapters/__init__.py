"""Adapters: the database, OCPP, OpenADR and data feeds. They translate; business rules live in the cores."""
