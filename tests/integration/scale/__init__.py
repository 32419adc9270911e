"""Issue 15 (speed at scale): real servers and real clients for the per-handshake trims
(TLS 1.3 tickets) and the large-config paths."""
