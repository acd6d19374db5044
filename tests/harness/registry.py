# Licensed under the Apache License, Version 2.0.
"""What the harness remembers across a test session: every gateway made
(for the per-test error-log check and the final secret scan) and every
client key issued (the secret scan looks for them)."""

GATEWAYS = []       # every Gateway created through the fixtures
CLIENT_KEYS = set() # every client key created with Gateway.create_key/keys()


def add_gateway(gw):
    GATEWAYS.append(gw)
    return gw


def add_key(key):
    if key:
        CLIENT_KEYS.add(key)
