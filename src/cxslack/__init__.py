"""cxslack: operator CLI for the Coralogix Slack integration."""

__version__ = "0.1.0"
