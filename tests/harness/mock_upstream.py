# Licensed under the Apache License, Version 2.0.
"""A mock LLM provider: answers the OpenAI and Anthropic APIs like the real
ones (JSON shapes the official SDKs accept, server-sent events for
"stream": true), records every request it receives and counts the TCP
connections it accepts.

Behaviour can be steered per request with headers the gateway passes
through (client headers reach the upstream unchanged):

  X-Mock-Status: N        answer with status N and a provider-style error body
  X-Mock-Delay: SECONDS   sleep before answering (to provoke a proxy timeout)
  X-Mock-Close: 1         close the connection without answering
  X-Mock-Event-Delay: S   seconds between streamed events (default 0, or 0.25
                          when the model name contains "slow")
  X-Mock-Usage: IN,OUT    the token counts the answer reports (default 9,5)

Usage is reported as the providers do: OpenAI chat completions in "usage"
(streamed: a last chunk with "choices": [] only when the request set
stream_options.include_usage, and "usage": null on the other chunks), the
Responses API (POST .../responses, JSON or events ending in
response.completed), embeddings (POST .../embeddings for a model whose name
contains "embedding": prompt tokens only), Anthropic messages ("usage"; a
stream's message_start and cumulative message_delta; a model whose name
contains "cache" reports cache_creation_input_tokens 100 and
cache_read_input_tokens 20 besides).

Uploads (multipart/form-data): POST .../audio/transcriptions and
.../audio/translations answer {"text": "Hello from the mock."},
.../images/edits and .../images/variations an images response (one tiny
PNG as b64_json); each also says what it parsed of the form in the headers
X-Mock-Model (the "model" field), X-Mock-Fields (the field names in order)
and X-Mock-Upload-Sha256 (the SHA-256 of the first part with a filename).

or for every request with MockUpstream.set_behaviour(...).

GET {prefix}/models (prefix: an upstream's path, e.g. "/openai/v1") serves
the list set with MockUpstream.set_models(prefix, ids, ...), in the OpenAI
format or, for prefixes containing "anthropic", Anthropic's (type,
display_name, created_at, has_more, first_id, last_id); such a list can be
made to fail (status=500), close the connection (close=True), answer late
(delay=SECONDS) or come chunked (chunked=True).  MockUpstream.models_fetches
(prefix) are the recorded GETs of it, with the credential they carried.
"""

import hashlib
import json
import re
import socket
import socketserver
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class RecordedRequest:
    """One request as the upstream saw it."""

    def __init__(self, method, target, headers, body, conn_id, received_at):
        self.method = method
        self.target = target                  # raw request target
        parts = urlsplit(target)
        self.path = parts.path
        self.query = parts.query
        self.header_list = headers            # [(name, value)] in order
        self.headers = _CIDict(headers)       # case-insensitive, last wins
        self.body = body                      # bytes, de-chunked
        self.conn_id = conn_id
        self.received_at = received_at
        self.chunked = False
        self.sent = b""                       # the response body it got

    @property
    def sha256(self):
        return hashlib.sha256(self.body).hexdigest()

    def json(self):
        return json.loads(self.body)

    def header_values(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    def __repr__(self):
        return "<RecordedRequest %s %s %d bytes>" % (self.method, self.target,
                                                      len(self.body))


class _CIDict(dict):
    def __init__(self, pairs):
        super().__init__()
        for k, v in pairs:
            super().__setitem__(k.lower(), v)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __contains__(self, k):
        return super().__contains__(k.lower())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, mock):
        self.mock = mock
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request, client_address):
        with self.mock._lock:
            self.mock.connections += 1
            self.mock._open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # a client (the gateway) that gives up on a slow answer is normal
        import sys
        import ssl
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError,
                            socket.timeout, ssl.SSLError)):
            return   # (a TLS client that refused the mock's certificate)
        super().handle_error(request, client_address)

    def shutdown_request(self, request):
        with self.mock._lock:
            self.mock._open_sockets.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and
    # the peer's delayed ACK add 40 ms to every kept-alive response.
    disable_nagle_algorithm = True
    server_version = "MockLLM/1.0"
    timeout = 60

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass

    def setup(self):
        super().setup()
        self.conn_id = id(self.connection)

    # every method goes through one dispatcher
    def do_POST(self):
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers up to the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(data), True
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise ConnectionError("eof in chunk")
                data += chunk
                self.rfile.readline(3)  # CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ConnectionError("eof in body")
        return body, False

    def _serve(self):
        mock = self.server.mock
        try:
            body, chunked = self._read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        rec = RecordedRequest(self.command, self.path,
                              list(self.headers.items()), body, self.conn_id,
                              time.monotonic())
        rec.chunked = chunked
        with mock._lock:
            mock.requests.append(rec)
            behaviour = dict(mock._behaviour)
        hdr = rec.headers

        def knob(name, default=None):
            v = hdr.get("X-Mock-" + name)
            return v if v is not None else behaviour.get(name.lower(), default)

        if str(knob("Close", "")) in ("1", "true", "True"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        delay = float(knob("Delay", 0) or 0)
        if delay:
            time.sleep(delay)
        status = int(knob("Status", 0) or 0)
        handler = behaviour.get("handler")
        if handler is not None:
            answer = handler(rec)
            if answer is not None:
                st, headers, payload = answer
                self._send(st, headers, payload)
                return
        path = rec.path.rstrip("/")
        models = self._models_for(mock, path)
        if models is not None:
            self._serve_models(rec, path, models)
            return
        if status:
            self._send_error(path, status)
            return
        model = None
        stream = False
        if body:
            try:
                doc = json.loads(body)
                if isinstance(doc, dict):
                    model = doc.get("model")
                    stream = doc.get("stream") is True
            except ValueError:
                pass
        model = model if isinstance(model, str) else "unknown-model"
        usage = (9, 5)
        try:
            if knob("Usage"):
                a, b = str(knob("Usage")).split(",")
                usage = (int(a), int(b))
        except ValueError:
            pass
        include_usage = False
        if body:
            try:
                so = json.loads(body).get("stream_options")
                include_usage = (isinstance(so, dict)
                                 and so.get("include_usage") is True)
            except (ValueError, AttributeError):
                pass
        ev_delay = knob("Event-Delay", None)
        if ev_delay is None:
            ev_delay = 0.25 if "slow" in model else 0.0
        ev_delay = float(ev_delay)
        if path.endswith("/chat/completions"):
            if stream:
                self._stream(rec, _openai_events(model, usage, include_usage),
                             ev_delay)
            else:
                self._send_json(200, _openai_completion(model, usage))
        elif path.endswith("/responses"):
            if stream:
                self._stream(rec, _responses_events(model, usage), ev_delay)
            else:
                self._send_json(200, _responses_response(model, usage))
        elif path.endswith("/embeddings") and "embedding" in model:
            self._send_json(200, _embeddings(model, usage))
        elif path.endswith("/messages/count_tokens"):
            self._send_json(200, {"input_tokens": 12})
        elif path.endswith("/messages"):
            if stream:
                self._stream(rec, _anthropic_events(model, usage), ev_delay)
            else:
                self._send_json(200, _anthropic_message(model, usage))
        elif (path.endswith("/audio/transcriptions")
              or path.endswith("/audio/translations")):
            self._send_upload(rec, {"text": MOCK_TEXT})
        elif (path.endswith("/images/edits")
              or path.endswith("/images/variations")):
            self._send_upload(rec, {"created": int(time.time()),
                                    "data": [{"b64_json": TINY_PNG_B64}]})
        elif path.endswith("/models") and self.command == "GET":
            self._send_json(200, {"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 0,
                 "owned_by": "mock"}]})
        else:
            # any other endpoint: echo what arrived, so tests can see it
            self._send_json(200, {"object": "mock.echo", "method": self.command,
                                  "path": rec.path, "query": rec.query,
                                  "body_sha256": rec.sha256})

    def _send_upload(self, rec, doc):
        fields = multipart_fields(rec.headers.get("Content-Type"), rec.body)
        headers = [("Content-Type", "application/json"),
                   ("X-Mock-Upstream", "1")]
        if fields is None:
            headers.append(("X-Mock-Fields", "unparsable"))
        else:
            headers.append(("X-Mock-Fields",
                            ",".join(f[0] for f in fields)))
            for name, filename, content in fields:
                if name == "model" and filename is None:
                    headers.append(("X-Mock-Model", content.decode(
                        "utf-8", "replace")))
            files = [f for f in fields if f[1] is not None]
            if files:
                headers.append(("X-Mock-Upload-Sha256",
                                hashlib.sha256(files[0][2]).hexdigest()))
        self._send(200, headers, json.dumps(doc).encode())

    @staticmethod
    def _models_for(mock, path):
        if mock.models is None or not path.endswith("/models"):
            return None
        with mock._lock:
            return mock.models.get(path[:-len("/models")])

    def _serve_models(self, rec, path, conf):
        if conf.get("close"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if conf.get("delay"):
            time.sleep(conf["delay"])
        if conf.get("status"):
            self._send_error(path, conf["status"])
            return
        ids = conf["ids"]
        if conf["style"] == "anthropic":
            doc = {"data": [{"type": "model", "id": i,
                             "display_name": "Display " + i,
                             "created_at": "2025-02-19T00:00:00Z"}
                            for i in ids],
                   "has_more": False,
                   "first_id": ids[0] if ids else None,
                   "last_id": ids[-1] if ids else None}
        else:
            doc = {"object": "list",
                   "data": [{"id": i, "object": "model",
                             "created": 1700000000, "owned_by": "mock"}
                            for i in ids]}
        payload = json.dumps(doc).encode()
        if not conf.get("chunked"):
            self._send(200, [("Content-Type", "application/json")], payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._rec_sent(payload)
        for i in range(0, len(payload), 7):
            part = payload[i:i + 7]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send(self, status, headers, payload):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._rec_sent(payload)
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _rec_sent(self, payload):
        with self.server.mock._lock:
            if self.server.mock.requests:
                self.server.mock.requests[-1].sent = payload

    def _send_json(self, status, doc):
        self._send(status, [("Content-Type", "application/json"),
                            ("X-Mock-Upstream", "1")],
                   json.dumps(doc).encode())

    def _send_error(self, path, status):
        if path.endswith("/messages") or path.endswith("/count_tokens"):
            etype = {400: "invalid_request_error", 401: "authentication_error",
                     403: "permission_error", 404: "not_found_error",
                     429: "rate_limit_error", 529: "overloaded_error"}.get(
                         status, "api_error")
            doc = {"type": "error", "error": {"type": etype,
                                              "message": "mock error %d" % status}}
        else:
            doc = {"error": {"message": "mock error %d" % status,
                             "type": "server_error" if status >= 500
                             else "invalid_request_error",
                             "param": None, "code": "mock_%d" % status}}
        self._send_json(status, doc)

    def _stream(self, rec, events, delay):
        mock = self.server.mock
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Mock-Upstream", "1")
        self.end_headers()
        self.wfile.flush()
        for i, ev in enumerate(events):
            if i and delay:
                time.sleep(delay)
            data = ev.encode()
            rec.sent += data
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            with mock._lock:
                mock.events_sent.append((rec, i, time.monotonic()))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        with mock._lock:
            mock.streams_done.append((rec, time.monotonic()))


MOCK_TEXT = "Hello from the mock."
# A 1x1 PNG.
TINY_PNG_B64 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
                "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def multipart_fields(content_type, body):
    """[(name, filename or None, content bytes)] of a multipart/form-data
    body, or None when it cannot be parsed (a plain reading of RFC 7578,
    for the tests' eyes only)."""
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type or "")
    if not m:
        return None
    delim = b"--" + (m.group(1) or m.group(2)).encode()
    pieces = body.split(b"\r\n" + delim)
    if not pieces[0].startswith(delim):
        return None
    pieces[0] = pieces[0][len(delim):]
    fields = []
    for piece in pieces[1:] if pieces[0] == b"" else pieces:
        if piece.startswith(b"--"):
            break
        if not piece.startswith(b"\r\n") or b"\r\n\r\n" not in piece:
            return None
        head, content = piece[2:].split(b"\r\n\r\n", 1)
        disp = [l for l in head.split(b"\r\n")
                if l.lower().startswith(b"content-disposition:")]
        if len(disp) != 1:
            return None
        d = disp[0].decode("utf-8", "replace")
        name = re.search(r';\s*name="?([^";]*)"?', d)
        fname = re.search(r';\s*filename="?([^";]*)"?', d)
        fields.append((name.group(1) if name else None,
                       fname.group(1) if fname else None, content))
    return fields


def _openai_completion(model, usage=(9, 5)):
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the mock.",
                        "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                  "total_tokens": usage[0] + usage[1]},
        "system_fingerprint": "fp_mock",
    }


STREAM_WORDS = ["Hello", " from", " the", " mock", "."]


def _openai_events(model, usage=(9, 5), include_usage=False):
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())

    def chunk(delta, finish=None):
        doc = {
            "id": cid, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
        if include_usage:
            doc["usage"] = None
        return "data: " + json.dumps(doc) + "\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w}) for w in STREAM_WORDS]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append("data: " + json.dumps({
            "id": cid, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": "fp_mock", "choices": [],
            "usage": {"prompt_tokens": usage[0],
                      "completion_tokens": usage[1],
                      "total_tokens": usage[0] + usage[1],
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {
                          "reasoning_tokens": 0}}}) + "\n\n")
    events.append("data: [DONE]\n\n")
    return events


def _responses_response(model, usage=(9, 5), status="completed"):
    return {
        "id": "resp_" + uuid.uuid4().hex[:24], "object": "response",
        "created_at": int(time.time()), "status": status, "model": model,
        "output": [{"type": "message", "id": "msg_" + uuid.uuid4().hex[:12],
                    "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text",
                                 "text": "Hello from the mock.",
                                 "annotations": []}]}],
        "usage": {"input_tokens": usage[0],
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": usage[1],
                  "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": usage[0] + usage[1]},
    }


def _responses_events(model, usage=(9, 5)):
    def ev(name, doc):
        doc = dict(doc, type=name)
        return "event: %s\ndata: %s\n\n" % (name, json.dumps(doc))

    final = _responses_response(model, usage)
    start = dict(final, status="in_progress", output=[], usage=None)
    events = [ev("response.created", {"sequence_number": 0,
                                      "response": start})]
    events += [ev("response.output_text.delta",
                  {"sequence_number": i + 1, "item_id": "msg_1",
                   "output_index": 0, "content_index": 0, "delta": w})
               for i, w in enumerate(STREAM_WORDS)]
    events.append(ev("response.completed",
                     {"sequence_number": len(STREAM_WORDS) + 1,
                      "response": final}))
    return events


def _embeddings(model, usage=(9, 5)):
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": 0,
                      "embedding": [0.0123, -0.0456, 0.0789]}],
            "usage": {"prompt_tokens": usage[0], "total_tokens": usage[0]}}


def _anthropic_usage(model, usage, output):
    u = {"input_tokens": usage[0], "output_tokens": output}
    if "cache" in model:
        u["cache_creation_input_tokens"] = 100
        u["cache_read_input_tokens"] = 20
    return u


def _anthropic_message(model, usage=(9, 5)):
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello from the mock."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(model, usage, usage[1]),
    }


def _anthropic_events(model, usage=(9, 5)):
    def ev(name, doc):
        return "event: %s\ndata: %s\n\n" % (name, json.dumps(doc))

    msg = _anthropic_message(model, usage)
    msg["content"] = []
    msg["stop_reason"] = None
    msg["usage"] = _anthropic_usage(model, usage, 1)
    events = [ev("message_start", {"type": "message_start", "message": msg}),
              ev("content_block_start", {"type": "content_block_start",
                                         "index": 0,
                                         "content_block": {"type": "text",
                                                           "text": ""}}),
              ev("ping", {"type": "ping"})]
    events += [ev("content_block_delta",
                  {"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": w}})
               for w in STREAM_WORDS]
    events += [ev("content_block_stop", {"type": "content_block_stop",
                                         "index": 0}),
               ev("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": "end_turn",
                                              "stop_sequence": None},
                                    "usage": {"output_tokens": usage[1]}}),
               ev("message_stop", {"type": "message_stop"})]
    return events


class MockUpstream:
    """Threaded HTTP/1.1 mock provider on 127.0.0.1:<free port>; over TLS
    (https://) with tls=(certfile, keyfile)."""

    def __init__(self, tls=None):
        self.tls = tls
        self._lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.events_sent = []
        self.streams_done = []
        self._behaviour = {}
        self.models = {}          # upstream path prefix -> list settings
        self._open_sockets = set()
        self._server = None
        self._thread = None
        self.port = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http",
                                      self.port)

    def start(self):
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            # the handshake happens in the handler's thread, not in accept
            self._server.socket = ctx.wrap_socket(
                self._server.socket, server_side=True,
                do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        daemon=True, name="mock-upstream")
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self.close_connections()
            self._server = None

    def close_connections(self):
        """Close every connection the mock holds open (kept-alive ones)."""
        with self._lock:
            socks = list(self._open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def clear(self):
        """Forget recorded requests and events, reset counters and behaviour."""
        with self._lock:
            self.requests = []
            self.connections = 0
            self.events_sent = []
            self.streams_done = []
            self._behaviour = {}
            self.models = {}

    def set_behaviour(self, status=None, delay=None, close=None,
                      event_delay=None, handler=None):
        """Steer every following request (until clear()).  handler(rec) may
        return (status, [(header, value)], body_bytes) or None."""
        with self._lock:
            for k, v in (("status", status), ("delay", delay),
                         ("close", close), ("event-delay", event_delay),
                         ("handler", handler)):
                if v is not None:
                    self._behaviour[k] = v

    def set_models(self, prefix, ids, style=None, status=None, delay=None,
                   close=False, chunked=False):
        """GET {prefix}/models serves these ids (until clear_models());
        style "openai" or "anthropic" (default: by the prefix)."""
        if style is None:
            style = "anthropic" if "anthropic" in prefix else "openai"
        with self._lock:
            self.models[prefix.rstrip("/")] = {
                "ids": list(ids), "style": style, "status": status,
                "delay": delay, "close": close, "chunked": chunked}

    def clear_models(self):
        with self._lock:
            self.models = {}

    def models_fetches(self, prefix=None):
        """The GET .../models requests received (under prefix, if given)."""
        with self._lock:
            reqs = list(self.requests)
        return [r for r in reqs if r.method == "GET"
                and r.path.rstrip("/").endswith("/models")
                and (prefix is None or r.path.startswith(prefix.rstrip("/")
                                                         + "/"))]

    def wait_for_requests(self, n, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        with self._lock:
            return list(self.requests)

    @property
    def last(self):
        with self._lock:
            return self.requests[-1] if self.requests else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
