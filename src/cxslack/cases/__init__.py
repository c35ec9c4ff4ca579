"""Coralogix Cases in Slack, one feature in three parts.

`model` is the Case as cxslack sees it; `notify` posts a Case's notifications (one root per
Case and connector, updates per reply mode); `twoway` turns human replies in those threads into
Case comments; `previews` unfurls Case URLs people share. The messages themselves are built in
`cxslack.slack.messages`.
"""
