"""Slack access: the Web API client with cxslack's retry, error and redaction policies."""
