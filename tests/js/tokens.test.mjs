// Licensed under the Apache License, Version 2.0.
//
// Token limits and quotas (SPEC section 11) as the official SDKs see them:
// a token limit is a RateLimitError the SDK retries after retry-after-ms; a
// used-up quota is a RateLimitError it does not retry (x-should-retry:
// false).  Run by tests/integration/test_sdk_tokens.py, which makes the
// keys:
//   CR_GATEWAY_URL                    the gateway root
//   CR_OPENAI_TPM_KEY, CR_ANTHROPIC_TPM_KEY      tpm 60000 (1000 a second)
//   CR_OPENAI_QUOTA_KEY, CR_ANTHROPIC_QUOTA_KEY  quota 100 a day
// The mock upstream reports the usage given in X-Mock-Usage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

function env(name) {
    const v = process.env[name];
    if (!v) {
        throw new Error(`${name} must be set`);
    }
    return v;
}

const GATEWAY_URL = env('CR_GATEWAY_URL').replace(/\/+$/, '');

// A fetch that counts the HTTP requests the SDK makes.
function countingFetch() {
    const f = async (...args) => {
        f.calls += 1;
        return fetch(...args);
    };
    f.calls = 0;
    return f;
}

function openai(apiKey, usage, maxRetries, f) {
    return new OpenAI({
        apiKey, baseURL: GATEWAY_URL + '/v1', maxRetries, timeout: 20000,
        fetch: f, defaultHeaders: { 'X-Mock-Usage': usage },
    });
}

function anthropic(apiKey, usage, maxRetries, f) {
    return new Anthropic({
        apiKey, baseURL: GATEWAY_URL, maxRetries, timeout: 20000,
        fetch: f, defaultHeaders: { 'X-Mock-Usage': usage },
    });
}

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const message = {
    model: 'claude-3-5-haiku-latest', max_tokens: 16,
    messages: [{ role: 'user', content: 'hi' }],
};

async function rejection(call) {
    try {
        await call();
    } catch (err) {
        return err;
    }
    assert.fail('the call succeeded, an error was expected');
}

test('openai: a token limit is a RateLimitError (tokens), retried after retry-after-ms', async () => {
    const key = env('CR_OPENAI_TPM_KEY');
    // 61000 tokens: the bucket ends 1000 tokens (1 s) below zero.
    const first = await openai(key, '60000,1000', 0).chat.completions.create(chat);
    assert.equal(first.usage.total_tokens, 61000);
    const err = await rejection(() =>
        openai(key, '1,1', 0).chat.completions.create(chat));
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.type, 'tokens');
    assert.equal(err.code, 'rate_limit_exceeded');
    const ms = Number(err.headers.get('retry-after-ms'));
    assert.ok(ms > 0 && ms <= 1000, `retry-after-ms ${ms}`);
    assert.equal(err.headers.get('x-ratelimit-remaining-tokens'), '0');
    // The same call with retries: refused once, then admitted.
    await new Promise((r) => setTimeout(r, 0));
    const f = countingFetch();
    const client = openai(key, '1,1', 2, f);
    // Empty the bucket again, then let the SDK wait and retry.
    await openai(key, '60000,1000', 0).chat.completions.create(chat).catch(() => {});
    const ok = await client.chat.completions.create(chat);
    assert.equal(ok.object, 'chat.completion');
    assert.ok(f.calls >= 1 && f.calls <= 3, `calls ${f.calls}`);
});

test('openai: a used-up quota is a RateLimitError (insufficient_quota), not retried', async () => {
    const key = env('CR_OPENAI_QUOTA_KEY');
    await openai(key, '60,30', 0).chat.completions.create(chat);   // 90 of 100
    await openai(key, '60,30', 0).chat.completions.create(chat);   // crosses
    const f = countingFetch();
    const err = await rejection(() =>
        openai(key, '1,1', 3, f).chat.completions.create(chat));
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.type, 'insufficient_quota');
    assert.equal(err.code, 'insufficient_quota');
    assert.match(err.message, /quota/);
    assert.equal(f.calls, 1, 'the SDK retried a used-up quota');
});

test('anthropic: a token limit is a RateLimitError, retried after retry-after-ms', async () => {
    const key = env('CR_ANTHROPIC_TPM_KEY');
    const first = await anthropic(key, '60000,1000', 0).messages.create(message);
    assert.equal(first.usage.output_tokens, 1000);
    const err = await rejection(() =>
        anthropic(key, '1,1', 0).messages.create(message));
    assert.ok(err instanceof Anthropic.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.error?.error?.type, 'rate_limit_error');
    assert.equal(err.headers.get('anthropic-ratelimit-tokens-remaining'), '0');
    assert.ok(Number(err.headers.get('retry-after-ms')) > 0);
    const f = countingFetch();
    await anthropic(key, '60000,1000', 0).messages.create(message).catch(() => {});
    const ok = await anthropic(key, '1,1', 2, f).messages.create(message);
    assert.equal(ok.type, 'message');
    assert.ok(f.calls >= 1 && f.calls <= 3, `calls ${f.calls}`);
});

test('anthropic: a used-up quota is a RateLimitError naming the quota, not retried', async () => {
    const key = env('CR_ANTHROPIC_QUOTA_KEY');
    await anthropic(key, '60,30', 0).messages.create(message);
    await anthropic(key, '60,30', 0).messages.create(message);
    const f = countingFetch();
    const err = await rejection(() =>
        anthropic(key, '1,1', 3, f).messages.create(message));
    assert.ok(err instanceof Anthropic.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.error?.error?.type, 'rate_limit_error');
    assert.match(err.error?.error?.message ?? '', /quota/);
    assert.equal(err.headers.get('x-should-retry'), 'false');
    assert.equal(f.calls, 1, 'the SDK retried a used-up quota');
});
