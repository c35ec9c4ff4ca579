"""Coralogix access: where the account lives (config) and how cxslack talks to it (client)."""
