"""`cxslack doctor`: diagnose the product page's Troubleshooting symptoms, plus local health.

One module of checks per symptom (failing, timeline, previews, routing, certification, local),
the report model (report.py), what a run shares (context.py) and its Slack answers
(slack_state.py). `runner.diagnose` runs the selected checks and returns a Report; the CLI renders it.
"""
