// Licensed under the Apache License, Version 2.0.
//
// Uploads through the gateway with the official OpenAI SDK (multipart/
// form-data, SPEC 10): audio.transcriptions.create, audio.translations.create
// and images.edit with a file, as their users call them; a model the key may
// not use raises PermissionDeniedError, a model with no route NotFoundError.
//
// Run with `node --test multipart.test.mjs` and the target in the environment:
//   CR_GATEWAY_URL   the gateway root, e.g. http://127.0.0.1:8080
//   CR_KEY           a key allowed every model
//   CR_LIMITED_KEY   a key allowed only gpt-4o-mini
// tests/integration/test_sdk_multipart.py sets these up, runs this file and
// checks what the mock upstream received (X-Sdk-Test names each request).
//
// The mock upstream (tests/harness/mock_upstream.py) answers with what it
// parsed of the form: X-Mock-Model (the model field) and X-Mock-Upload-Sha256
// (the SHA-256 of the first file), so the file's bytes are compared end to end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import OpenAI, { toFile } from 'openai';

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
const MOCK_TEXT = 'Hello from the mock.';

function client(testName, apiKey = KEY) {
    return new OpenAI({
        apiKey,
        baseURL: GATEWAY_URL + '/v1',
        maxRetries: 0,
        timeout: 60000,
        defaultHeaders: { 'X-Sdk-Test': testName },
    });
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// A file of n random bytes (with CRLF and dashes, as a real file has).
function audioBytes(n) {
    const buf = randomBytes(n);
    Buffer.from('\r\n--\r\n------').copy(buf, 1000);
    return buf;
}

test('openai: audio.transcriptions.create uploads the file unchanged', async () => {
    const bytes = audioBytes(2 * 1024 * 1024);
    const { data, response } = await client('mp-transcription').audio.transcriptions
        .create({
            file: await toFile(bytes, 'speech.mp3', { type: 'audio/mpeg' }),
            model: 'gpt-4o-transcribe',
        })
        .withResponse();
    assert.equal(data.text, MOCK_TEXT);
    assert.equal(response.headers.get('x-mock-model'), 'gpt-4o-transcribe');
    assert.equal(response.headers.get('x-mock-upload-sha256'), sha256(bytes));
    assert.ok(response.headers.get('request-id'), 'no Request-Id');
});

test('openai: audio.translations.create with a File object', async () => {
    const bytes = audioBytes(300 * 1024);
    const { data, response } = await client('mp-translation').audio.translations
        .create({
            file: new File([bytes], 'speech.wav', { type: 'audio/wav' }),
            model: 'gpt-4o-mini-transcribe',
            response_format: 'json',
        })
        .withResponse();
    assert.equal(data.text, MOCK_TEXT);
    assert.equal(response.headers.get('x-mock-model'), 'gpt-4o-mini-transcribe');
    assert.equal(response.headers.get('x-mock-upload-sha256'), sha256(bytes));
});

test('openai: images.edit uploads the image unchanged', async () => {
    const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
        audioBytes(1024 * 1024)]);
    const { data, response } = await client('mp-image-edit').images
        .edit({
            image: await toFile(png, 'otter.png', { type: 'image/png' }),
            prompt: 'A cute baby sea otter wearing a beret',
            model: 'gpt-image-1',
        })
        .withResponse();
    assert.equal(data.data.length, 1);
    assert.ok(data.data[0].b64_json, 'no b64_json image');
    assert.equal(response.headers.get('x-mock-model'), 'gpt-image-1');
    assert.equal(response.headers.get('x-mock-upload-sha256'), sha256(png));
});

test('openai: an upload with a model the key may not use raises PermissionDeniedError (403)', async () => {
    let err;
    try {
        await client('mp-forbidden', LIMITED_KEY).audio.transcriptions.create({
            file: await toFile(audioBytes(100 * 1024), 'speech.mp3'),
            model: 'gpt-4o-transcribe',
        });
    } catch (e) {
        err = e;
    }
    assert.ok(err instanceof OpenAI.PermissionDeniedError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 403);
    assert.equal(err.code, 'model_not_permitted');
    assert.equal(err.headers.get('x-should-retry'), 'false');
    assert.ok(!String(err.message).includes(LIMITED_KEY), 'the key is in the message');
});

test('openai: an upload with a model that has no route raises NotFoundError (404)', async () => {
    let err;
    try {
        await client('mp-no-route').audio.transcriptions.create({
            file: await toFile(audioBytes(1024), 'speech.mp3'),
            model: 'whisper-1',
        });
    } catch (e) {
        err = e;
    }
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
});
