"""Request framing side by side: the same raw bytes to apache2 and httpd-py."""
