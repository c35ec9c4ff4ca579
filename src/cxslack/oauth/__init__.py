"""The Slack OAuth install flow's building blocks.

- `pkce`: the one-time `state`, the S256 PKCE pair, the authorize URL.
- `redirect`: which `--redirect-uri` values cxslack can listen on (loopback only).
- `tls`: the self-signed loopback certificate and the server-side TLS context.
- `pages`: what the browser shows when it lands on the callback.
- `loopback`: the one-shot local callback listener, and `--paste` for headless machines.

Import the submodule you need: this package imports nothing itself, so the CLI stays quick to start.
"""
