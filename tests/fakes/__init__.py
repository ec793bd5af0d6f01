"""Loopback fakes of the services the bot talks to, for integration tests.

Each fake speaks the real wire protocol on 127.0.0.1, so the real client libraries run against it.
"""
