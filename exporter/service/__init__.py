"""The long-running exporter: sources, HTTP server, logs, web security, and the demo."""
