# Licensed under the Apache License, Version 2.0.
"""The shared pytest harness of mod_clawdrouter (see tests/README.md)."""

from .mock_upstream import MockUpstream, RecordedRequest
from .gateway import (Gateway, GatewayError, free_port, closed_port,
                      OPENAI_CREDENTIAL, ANTHROPIC_CREDENTIAL,
                      FILE_CREDENTIAL, UPSTREAM_CREDENTIALS, BUILD_DIR,
                      IS_ROOT)
from .logcheck import bad_lines, find_secrets, line_level
from .client import (chat_body, messages_body, openai_headers,
                     anthropic_headers, post, call, assert_error, raw_request,
                     RawResponse, http_request_bytes, ERRORS, OPENAI_PATH,
                     ANTHROPIC_PATH, ANTHROPIC_VERSION, REQUEST_ID_RE)
from . import registry

__all__ = [n for n in dir() if not n.startswith("_")]
