// Licensed under the Apache License, Version 2.0.
//
// GET /models and /models/{id} through the official SDKs (SPEC 10):
// `models.list()` and `models.retrieve()` in `openai` and
// `@anthropic-ai/sdk` return the models the key may use, and a model it
// may not use is the SDK's NotFoundError.
//
// Run by tests/integration/test_models.py, which sets:
//   CR_GATEWAY_URL     the gateway root, e.g. http://127.0.0.1:8080
//   CR_KEY             a key allowed every model
//   CR_LIMITED_KEY     a key allowed gpt-4o* and claude-3-5-* only
//   CR_OPENAI_IDS      the ids the gateway lists for CR_KEY, comma separated
//   CR_ANTHROPIC_IDS   ... in Anthropic's format
//   CR_LIMITED_OPENAI_IDS, CR_LIMITED_ANTHROPIC_IDS  the same for CR_LIMITED_KEY

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

function env(name) {
    const value = process.env[name];
    if (value === undefined) {
        throw new Error(`${name} must be set (see tests/integration/test_models.py)`);
    }
    return value;
}

const GATEWAY_URL = env('CR_GATEWAY_URL').replace(/\/+$/, '');
const KEY = env('CR_KEY');
const LIMITED_KEY = env('CR_LIMITED_KEY');
const ids = (name) => env(name).split(',').filter((s) => s);

const openai = (apiKey) => new OpenAI({
    apiKey, baseURL: GATEWAY_URL + '/v1', maxRetries: 0, timeout: 20000,
});
const anthropic = (apiKey) => new Anthropic({
    apiKey, baseURL: GATEWAY_URL, maxRetries: 0, timeout: 20000,
});

async function all(page) {
    const out = [];
    for await (const m of page) {
        out.push(m);
    }
    return out;
}

test('openai models.list() lists what the key may use', async () => {
    const models = await all(openai(KEY).models.list());
    assert.deepEqual(models.map((m) => m.id), ids('CR_OPENAI_IDS'));
    for (const m of models) {
        assert.equal(m.object, 'model');
        assert.equal(typeof m.created, 'number');
        assert.equal(typeof m.owned_by, 'string');
    }
    const limited = await all(openai(LIMITED_KEY).models.list());
    assert.deepEqual(limited.map((m) => m.id), ids('CR_LIMITED_OPENAI_IDS'));
});

test('openai models.retrieve() and NotFoundError', async () => {
    const m = await openai(KEY).models.retrieve('gpt-4o-mini');
    assert.equal(m.id, 'gpt-4o-mini');
    assert.equal(m.owned_by, 'openai');
    await assert.rejects(openai(LIMITED_KEY).models.retrieve('o1-mini'),
        (err) => err instanceof OpenAI.NotFoundError
            && err.code === 'model_not_found');
    await assert.rejects(openai('sk-' + 'Q7'.repeat(24)).models.list(),
        (err) => err instanceof OpenAI.AuthenticationError);
});

test('anthropic models.list() lists what the key may use', async () => {
    const models = await all(anthropic(KEY).models.list());
    assert.deepEqual(models.map((m) => m.id), ids('CR_ANTHROPIC_IDS'));
    for (const m of models) {
        assert.equal(m.type, 'model');
        assert.equal(typeof m.display_name, 'string');
        assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    const limited = await all(anthropic(LIMITED_KEY).models.list());
    assert.deepEqual(limited.map((m) => m.id), ids('CR_LIMITED_ANTHROPIC_IDS'));
});

test('anthropic models.retrieve() and NotFoundError', async () => {
    const m = await anthropic(KEY).models.retrieve('claude-sonnet-4-5');
    assert.equal(m.id, 'claude-sonnet-4-5');
    assert.equal(m.type, 'model');
    await assert.rejects(anthropic(LIMITED_KEY).models.retrieve('claude-sonnet-4-5'),
        (err) => err instanceof Anthropic.NotFoundError
            && err.error?.error?.type === 'not_found_error');
    await assert.rejects(anthropic('sk-' + 'Q7'.repeat(24)).models.list(),
        (err) => err instanceof Anthropic.AuthenticationError);
});
