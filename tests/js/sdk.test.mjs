// Licensed under the Apache License, Version 2.0.
//
// End-to-end tests of mod_clawdrouter with the official OpenAI and Anthropic
// SDKs: what a user of those SDKs sees when pointing them at the gateway.
//
// Run with `node --test sdk.test.mjs` and the target in the environment:
//   CR_GATEWAY_URL   the gateway root, e.g. http://127.0.0.1:8080
//   CR_KEY           a key allowed every model
//   CR_LIMITED_KEY   a key allowed only gpt-4o-mini and claude-3-5-haiku-*
//   CR_UNKNOWN_KEY   optional: a well-formed key the store does not hold
//   CR_UPSTREAM_URL  the mock upstream behind the gateway (informational)
// tests/integration/test_sdk.py sets all of these up and runs this file.
//
// Every request carries an `X-Sdk-Test` header naming its test, so the
// Python wrapper can check which requests reached the upstream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

function requiredEnv(name) {
    const value = process.env[name];
    if (!value) {
        throw new Error(`${name} must be set (see tests/js/README.md)`);
    }
    return value;
}

const GATEWAY_URL = requiredEnv('CR_GATEWAY_URL').replace(/\/+$/, '');
const KEY = requiredEnv('CR_KEY');
const LIMITED_KEY = requiredEnv('CR_LIMITED_KEY');

// The mock upstream's fixed answer (tests/harness/mock_upstream.py).
const MOCK_TEXT = 'Hello from the mock.';
const MOCK_STREAM_WORDS = ['Hello', ' from', ' the', ' mock', '.'];

// SPEC 6: 1 to 128 characters of A-Z a-z 0-9 . _ : -
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

// The Request-Id response header, which every response carries (SPEC 6).
function requestIdHeader(headers) {
    const requestId = headers.get('request-id');
    assert.equal(typeof requestId, 'string', 'no Request-Id response header');
    assert.match(requestId, REQUEST_ID_RE, 'malformed Request-Id response header');
    return requestId;
}

// A well-formed key (sk- and 40+ base62 characters) that the store never held.
const UNKNOWN_KEY = process.env.CR_UNKNOWN_KEY || 'sk-' + 'Q7'.repeat(24);

const OPENAI_MODEL = 'gpt-4o-mini';
const ANTHROPIC_MODEL = 'claude-3-5-haiku-latest';

function openaiClient(testName, { apiKey = KEY, headers = {} } = {}) {
    return new OpenAI({
        apiKey,
        baseURL: GATEWAY_URL + '/v1',
        maxRetries: 0,
        timeout: 20000,
        defaultHeaders: { 'X-Sdk-Test': testName, ...headers },
    });
}

function anthropicClient(testName, { apiKey = KEY, authToken, headers = {} } = {}) {
    // Pass exactly one credential option, so the SDK never falls back to
    // ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN from the environment.
    const credential = authToken !== undefined ? { authToken } : { apiKey };
    return new Anthropic({
        ...credential,
        baseURL: GATEWAY_URL,
        maxRetries: 0,
        timeout: 20000,
        defaultHeaders: { 'X-Sdk-Test': testName, ...headers },
    });
}

const chatParams = (model = OPENAI_MODEL) => ({
    model,
    messages: [{ role: 'user', content: 'Say hello.' }],
});

const messageParams = (model = ANTHROPIC_MODEL) => ({
    model,
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Say hello.' }],
});

// Runs `call`, which must reject, and returns the error.
async function rejection(call) {
    try {
        await call();
    } catch (err) {
        return err;
    }
    assert.fail('the call succeeded, an error was expected');
}

// The gateway's id on an error the gateway made itself (SPEC 6): the same
// in Request-Id, x-request-id, and for Anthropic the body's request_id.
function assertGatewayErrorIds(err, protocol) {
    const requestId = requestIdHeader(err.headers);
    assert.equal(err.headers.get('x-request-id'), requestId, 'x-request-id equals Request-Id');
    // what each SDK shows its user
    assert.equal(err.requestID, requestId, 'the SDK error\'s requestID');
    if (protocol === 'anthropic') {
        assert.equal(err.error?.request_id, requestId, 'request_id in the error body');
    }
    assert.match(err.headers.get('content-type') ?? '', /^application\/json/);
    return requestId;
}

// The key must never come back in an error (SPEC 5, 7).
function assertNoKeyIn(err, key) {
    assert.ok(!JSON.stringify(err.error ?? null).includes(key), 'error body contains the key');
    assert.ok(!String(err.message).includes(key), 'error message contains the key');
}

// ---------------------------------------------------------------- OpenAI

test('openai: chat completion returns the upstream answer', async () => {
    const client = openaiClient('openai-chat');
    const { data, response } = await client.chat.completions
        .create(chatParams())
        .withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, OPENAI_MODEL);
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(data.choices[0].message.content, MOCK_TEXT);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.equal(data.usage.total_tokens, 14);
    requestIdHeader(response.headers);
});

test('openai: streamed chat completion yields every chunk in order and finishes', async () => {
    const client = openaiClient('openai-stream');
    const stream = await client.chat.completions.create({ ...chatParams(), stream: true });
    const pieces = [];
    const finishReasons = [];
    let chunks = 0;
    for await (const chunk of stream) {
        chunks += 1;
        assert.equal(chunk.object, 'chat.completion.chunk');
        const choice = chunk.choices[0];
        if (choice.delta.content) {
            pieces.push(choice.delta.content);
        }
        if (choice.finish_reason) {
            finishReasons.push(choice.finish_reason);
        }
    }
    // role chunk + one per word + finish chunk ([DONE] ends the iteration)
    assert.equal(chunks, MOCK_STREAM_WORDS.length + 2);
    assert.deepEqual(pieces, MOCK_STREAM_WORDS);
    assert.deepEqual(finishReasons, ['stop']);
});

test('openai: streamed chunks reach the client as the upstream sends them', async () => {
    // The upstream waits EVENT_DELAY seconds between events; a gateway that
    // buffered the response would deliver every chunk at the very end.
    const EVENT_DELAY = 0.3;
    const client = openaiClient('openai-stream-timing', {
        headers: { 'X-Mock-Event-Delay': String(EVENT_DELAY) },
    });
    const started = Date.now();
    const stream = await client.chat.completions.create({ ...chatParams(), stream: true });
    const arrivals = [];
    for await (const chunk of stream) {
        if (chunk.choices[0].delta.content) {
            arrivals.push(Date.now() - started);
        }
    }
    const total = Date.now() - started;
    assert.equal(arrivals.length, MOCK_STREAM_WORDS.length);
    // 7 events after the first: about 2.1 s in all; the first word comes
    // after one delay, long before the end.
    assert.ok(total >= 1800, `the stream took ${total} ms`);
    assert.ok(arrivals[0] < total - 1000,
        `first word at ${arrivals[0]} ms of ${total} ms: the response was buffered`);
    assert.ok(arrivals[arrivals.length - 1] - arrivals[0] >= 900,
        `words arrived at ${arrivals.join(', ')} ms: not spread out`);
});

test('openai: a bad key raises AuthenticationError (401) with the gateway request id', async () => {
    const client = openaiClient('openai-bad-key', { apiKey: UNKNOWN_KEY });
    const err = await rejection(() => client.chat.completions.create(chatParams()));
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 401);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.code, 'invalid_api_key');
    assert.equal(err.headers.get('www-authenticate')?.split(/\s/)[0], 'Bearer');
    assertGatewayErrorIds(err, 'openai');
    assertNoKeyIn(err, UNKNOWN_KEY);
});

// SPEC 10: with the SDK's own retries on, a wrong key fails after one
// request (x-should-retry: false); test_sdk.py counts the access log lines
// of these Request-Ids.
test('openai: a bad key with retries on fails at once, x-should-retry false', async () => {
    const client = new OpenAI({
        apiKey: UNKNOWN_KEY, baseURL: GATEWAY_URL + '/v1', maxRetries: 5,
        timeout: 20000,
        defaultHeaders: { 'X-Sdk-Test': 'openai-bad-key-retry',
                          'Request-Id': 'sdk-test.retry-openai' },
    });
    const err = await rejection(() => client.chat.completions.create(chatParams()));
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.headers.get('x-should-retry'), 'false');
});

test('anthropic: a bad key with retries on fails at once, x-should-retry false', async () => {
    const client = new Anthropic({
        apiKey: UNKNOWN_KEY, baseURL: GATEWAY_URL, maxRetries: 5,
        timeout: 20000,
        defaultHeaders: { 'X-Sdk-Test': 'anthropic-bad-key-retry',
                          'Request-Id': 'sdk-test.retry-anthropic' },
    });
    const err = await rejection(() => client.messages.create(messageParams()));
    assert.ok(err instanceof Anthropic.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.headers.get('x-should-retry'), 'false');
});

test('openai: a model the key may not use raises PermissionDeniedError (403)', async () => {
    const client = openaiClient('openai-forbidden', { apiKey: LIMITED_KEY });
    const err = await rejection(() => client.chat.completions.create(chatParams('gpt-4o')));
    assert.ok(err instanceof OpenAI.PermissionDeniedError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 403);
    assert.equal(err.type, 'permission_error');
    assert.equal(err.code, 'model_not_permitted');
    assertGatewayErrorIds(err, 'openai');
    assertNoKeyIn(err, LIMITED_KEY);
});

test('openai: the limited key still works for its allowed model', async () => {
    const client = openaiClient('openai-limited-ok', { apiKey: LIMITED_KEY });
    const completion = await client.chat.completions.create(chatParams());
    assert.equal(completion.choices[0].message.content, MOCK_TEXT);
});

test('openai: a model with no route raises NotFoundError (404)', async () => {
    const client = openaiClient('openai-no-route');
    const err = await rejection(() => client.chat.completions.create(chatParams('llama-3-70b')));
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assertGatewayErrorIds(err, 'openai');
});

test('openai: the client\'s own Request-Id is kept, on errors and on answers', async () => {
    const ownId = 'sdk-test.openai:' + Date.now();
    const bad = openaiClient('openai-own-id', {
        apiKey: UNKNOWN_KEY, headers: { 'Request-Id': ownId },
    });
    const err = await rejection(() => bad.chat.completions.create(chatParams()));
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(assertGatewayErrorIds(err, 'openai'), ownId);
    assert.equal(err.requestID, ownId);

    const good = openaiClient('openai-own-id-ok', { headers: { 'Request-Id': ownId } });
    const { response } = await good.chat.completions.create(chatParams()).withResponse();
    assert.equal(response.headers.get('request-id'), ownId);
});

test('openai: an upstream error passes through as the SDK\'s error class', async () => {
    const client = openaiClient('openai-upstream-error', { headers: { 'X-Mock-Status': '400' } });
    const err = await rejection(() => client.chat.completions.create(chatParams()));
    assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 400);
    // the mock's own body, unchanged
    assert.equal(err.code, 'mock_400');
    assert.equal(err.message, '400 mock error 400');
    requestIdHeader(err.headers);
});

// ------------------------------------------------------------- Anthropic

test('anthropic: a message returns the upstream answer', async () => {
    const client = anthropicClient('anthropic-message');
    const { data, response } = await client.messages.create(messageParams()).withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.type, 'message');
    assert.equal(data.role, 'assistant');
    assert.equal(data.model, ANTHROPIC_MODEL);
    assert.deepEqual(data.content, [{ type: 'text', text: MOCK_TEXT }]);
    assert.equal(data.stop_reason, 'end_turn');
    requestIdHeader(response.headers);
});

test('anthropic: a streamed message yields text deltas and a final message', async () => {
    const client = anthropicClient('anthropic-stream');
    const stream = client.messages.stream(messageParams());
    const deltas = [];
    const eventTypes = [];
    stream.on('text', (delta) => deltas.push(delta));
    stream.on('streamEvent', (event) => eventTypes.push(event.type));
    const final = await stream.finalMessage();
    assert.deepEqual(deltas, MOCK_STREAM_WORDS);
    assert.equal(eventTypes[0], 'message_start');
    assert.equal(eventTypes[eventTypes.length - 1], 'message_stop');
    assert.equal(final.role, 'assistant');
    assert.deepEqual(final.content.map((block) => block.text), [MOCK_TEXT]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 5);
});

test('anthropic: count_tokens goes through', async () => {
    const client = anthropicClient('anthropic-count-tokens');
    const { model, messages } = messageParams();
    const count = await client.messages.countTokens({ model, messages });
    assert.equal(count.input_tokens, 12);
});

test('anthropic: the key sent as Bearer (authToken) works too', async () => {
    const client = anthropicClient('anthropic-bearer', { authToken: KEY });
    const message = await client.messages.create(messageParams());
    assert.deepEqual(message.content, [{ type: 'text', text: MOCK_TEXT }]);
});

test('anthropic: a bad key raises AuthenticationError (401) with the gateway request id', async () => {
    for (const how of ['apiKey', 'authToken']) {
        const client = anthropicClient('anthropic-bad-key',
            how === 'apiKey' ? { apiKey: UNKNOWN_KEY } : { authToken: UNKNOWN_KEY });
        const err = await rejection(() => client.messages.create(messageParams()));
        assert.ok(err instanceof Anthropic.AuthenticationError,
            `${how}: got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, 401);
        assert.equal(err.error?.type, 'error');
        assert.equal(err.error?.error?.type, 'authentication_error');
        assertGatewayErrorIds(err, 'anthropic');
        assertNoKeyIn(err, UNKNOWN_KEY);
    }
});

test('anthropic: a model the key may not use raises PermissionDeniedError (403)', async () => {
    const client = anthropicClient('anthropic-forbidden', { apiKey: LIMITED_KEY });
    const err = await rejection(() => client.messages.create(messageParams('claude-opus-4')));
    assert.ok(err instanceof Anthropic.PermissionDeniedError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 403);
    assert.equal(err.error?.error?.type, 'permission_error');
    assertGatewayErrorIds(err, 'anthropic');
    assertNoKeyIn(err, LIMITED_KEY);
});

test('anthropic: the limited key still works for its allowed model', async () => {
    const client = anthropicClient('anthropic-limited-ok', { apiKey: LIMITED_KEY });
    const message = await client.messages.create(messageParams('claude-3-5-haiku-20241022'));
    assert.deepEqual(message.content, [{ type: 'text', text: MOCK_TEXT }]);
});

test('anthropic: the client\'s own Request-Id is kept, on errors and on answers', async () => {
    const ownId = 'sdk-test.anthropic:' + Date.now();
    const limited = anthropicClient('anthropic-own-id', {
        apiKey: LIMITED_KEY, headers: { 'Request-Id': ownId },
    });
    const err = await rejection(() => limited.messages.create(messageParams('claude-opus-4')));
    assert.ok(err instanceof Anthropic.PermissionDeniedError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(assertGatewayErrorIds(err, 'anthropic'), ownId);
    assert.equal(err.requestID, ownId);
    assert.equal(err.error?.request_id, ownId);

    const good = anthropicClient('anthropic-own-id-ok', { headers: { 'Request-Id': ownId } });
    const { response } = await good.messages.create(messageParams()).withResponse();
    assert.equal(response.headers.get('request-id'), ownId);
});

test('anthropic: an upstream error passes through as the SDK\'s error class', async () => {
    const client = anthropicClient('anthropic-upstream-error', { headers: { 'X-Mock-Status': '429' } });
    const err = await rejection(() => client.messages.create(messageParams()));
    assert.ok(err instanceof Anthropic.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 429);
    // the mock's own body, unchanged
    assert.equal(err.error?.error?.type, 'rate_limit_error');
    assert.equal(err.error?.error?.message, 'mock error 429');
    requestIdHeader(err.headers);
});
