"""Apache modules httpd-py implements: one file per module."""
