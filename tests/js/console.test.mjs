// Licensed under the Apache License, Version 2.0.
//
// Browser tests of the key management console (SPEC 9), with playwright-core
// driving Debian's chromium headless, and the official OpenAI SDK using the
// key copied from the page, as a ClawdRouter user would: sign in, press
// "新增密钥" / "New key" with a tpm and a token quota, copy the key, call the
// gateway with it, see the tokens it used in the list, revoke it, see the
// SDK get an authentication error; the token fields' validation.
//
// Run with `node --test console.test.mjs` and in the environment:
//   CR_GATEWAY_URL       the gateway root, e.g. http://127.0.0.1:8080
//   CR_CONSOLE_PATH      the console's path (default /console)
//   CR_CONSOLE_USER, CR_CONSOLE_PASSWORD   its Basic auth credentials
//   CR_CHROMIUM          the browser (default /usr/bin/chromium)
//   CR_ARTIFACTS_DIR     where screenshots go (default ../artifacts)
//   CR_KEYS_OUT          optional: a file that receives one JSON line
//                        {"id","key"} per key made, for the caller's checks
// tests/integration/test_console_browser.py sets these up and runs this file.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, request as playwrightRequest } from 'playwright-core';
import OpenAI from 'openai';

function requiredEnv(name) {
    const value = process.env[name];
    if (!value) {
        throw new Error(`${name} must be set (see the header of this file)`);
    }
    return value;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GATEWAY_URL = requiredEnv('CR_GATEWAY_URL').replace(/\/+$/, '');
const CONSOLE_URL = GATEWAY_URL + (process.env.CR_CONSOLE_PATH || '/console');
const USER = requiredEnv('CR_CONSOLE_USER');
const PASSWORD = requiredEnv('CR_CONSOLE_PASSWORD');
const CHROMIUM = process.env.CR_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.CR_ARTIFACTS_DIR || path.join(HERE, '..', 'artifacts');
const KEY_RE = /^sk-[A-Za-z0-9]{40,}$/;
const MOCK_TEXT = 'Hello from the mock.';
// The mock upstream reports this usage (tests/harness/mock_upstream.py):
// 31 input + 7 output tokens per answer.
const MOCK_USAGE = '31,7';
const TOKENS_PER_CHAT = 38;

// What each language's page says (cr_console_page.c's catalogue).
const TEXT = {
    zh: {
        locale: 'zh-CN', htmlLang: 'zh-CN', heading: 'API 密钥',
        newKey: '新增密钥', create: '创建密钥', created: '密钥已创建',
        warning: '此密钥只显示这一次', copy: '复制', copied: '已复制到剪贴板。',
        back: '返回密钥列表', active: '有效', revoked: '已吊销',
        revoke: '吊销', revokedNotice: '密钥已吊销。', confirm: '确定吊销此密钥？',
        other: 'English', otherHeading: 'API keys',
        perDay: '每天（UTC）', inTotal: '总计', today: '今天', thisMonth: '本月',
        noLimit: '不限', defaultTpm: '默认',
        errTpm: '每分钟令牌数必须是 0 到 1000000000000 之间的整数，或留空。',
    },
    en: {
        locale: 'en-US', htmlLang: 'en', heading: 'API keys',
        newKey: 'New key', create: 'Create key', created: 'Key created',
        warning: 'This is the only time this key is shown', copy: 'Copy',
        copied: 'Copied to the clipboard.', back: 'Back to keys',
        active: 'Active', revoked: 'Revoked', revoke: 'Revoke',
        revokedNotice: 'The key was revoked.', confirm: 'Revoke this key?',
        other: '中文', otherHeading: 'API 密钥',
        perDay: 'per day (UTC)', inTotal: 'in total', today: 'today',
        thisMonth: 'this month', noLimit: 'No limit', defaultTpm: 'Default',
        errTpm: 'Tokens per minute must be a whole number from 0 to 1000000000000, or empty.',
    },
};

let browser;

before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
});

after(async () => {
    if (browser) {
        await browser.close();
    }
});

function recordKey(id, key) {
    if (process.env.CR_KEYS_OUT) {
        fs.appendFileSync(process.env.CR_KEYS_OUT, JSON.stringify({ id, key }) + '\n');
    }
}

// A signed-in browser context in a language; every page error or console
// error (a Content-Security-Policy violation among them) is collected.
async function signedIn(lang, options = {}) {
    const context = await browser.newContext({
        httpCredentials: { username: USER, password: PASSWORD },
        locale: TEXT[lang].locale,
        viewport: { width: 1280, height: 820 },
        ...options,
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'],
                                   { origin: GATEWAY_URL });
    const page = await context.newPage();
    page.problems = [];
    page.on('pageerror', (err) => page.problems.push('page error: ' + err.message));
    page.on('console', (msg) => {
        if (msg.type() === 'error') {
            page.problems.push('console error: ' + msg.text());
        }
    });
    return { context, page };
}

function sdk(key) {
    return new OpenAI({ apiKey: key, baseURL: GATEWAY_URL + '/v1',
                        maxRetries: 0, timeout: 20000,
                        defaultHeaders: { 'X-Mock-Usage': MOCK_USAGE } });
}

async function chat(key) {
    return sdk(key).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say hello' }],
    });
}

async function fillCreateForm(page, t, { name, models, rpm, expires, tpm, quota, quotaPeriod }) {
    await page.getByText(t.newKey, { exact: false }).click();
    const form = page.locator('form.create-form');
    await form.locator('input[name=name]').fill(name);
    await form.locator('input[name=models]').fill(models);
    await form.locator('input[name=rpm]').fill(rpm);
    await form.locator('select[name=expires]').selectOption(expires);
    if (tpm !== undefined) {
        await form.locator('input[name=tpm]').fill(tpm);
    }
    if (quota !== undefined) {
        await form.locator('input[name=quota]').fill(quota);
    }
    if (quotaPeriod !== undefined) {
        await form.locator('select[name=quota_period]').selectOption(quotaPeriod);
    }
    return form;
}

async function createKey(page, t, fields) {
    const form = await fillCreateForm(page, t, fields);
    await form.getByRole('button', { name: t.create }).click();
    await page.waitForLoadState('load');
}

// A number the page shows: the value of its <data> element, which its
// text says in groups of three digits ("100,000").
async function shownNumber(locator) {
    const value = await locator.getAttribute('value');
    assert.match(value, /^\d+$/);
    assert.equal((await locator.textContent()).trim(),
                 Number(value).toLocaleString('en-US'), 'the text is the number');
    return Number(value);
}

// Per language: the key's limits and what the page should say of them.
const LIMITS = {
    zh: { tpm: '6000', quota: '50000', quotaPeriod: 'total', period: 'inTotal', usedIn: 'inTotal' },
    en: { tpm: '9000', quota: '100000', quotaPeriod: 'day', period: 'perDay', usedIn: 'today' },
};

for (const lang of ['zh', 'en']) {
    test(`console in ${lang}: create, copy, use, revoke`, async () => {
        const t = TEXT[lang];
        const { context, page } = await signedIn(lang);
        try {
            const list = await page.goto(CONSOLE_URL);
            assert.equal(list.status(), 200);
            assert.equal(list.headers()['cache-control'], 'no-store');
            assert.equal(await page.locator('html').getAttribute('lang'), t.htmlLang);
            assert.equal(await page.locator('h1').first().textContent(), t.heading);
            assert.match(await page.locator('.user').textContent(), new RegExp(USER));
            // The stylesheet applied (served by the module itself).
            const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
            assert.equal(bg, 'rgb(245, 246, 250)');

            const name = `browser-${lang}-${Date.now()}`;
            const limits = LIMITS[lang];
            await createKey(page, t, { name, models: 'gpt-*', rpm: '100', expires: '+30d',
                                       tpm: limits.tpm, quota: limits.quota,
                                       quotaPeriod: limits.quotaPeriod });

            // The created-key view: the key once, a copy button, a warning.
            assert.equal((await page.locator('h1').textContent()).replace('✓', ''), t.created);
            assert.match(await page.locator('.warning').textContent(), new RegExp(t.warning));
            const shown = await page.locator('#new-key').inputValue();
            assert.match(shown, KEY_RE);
            const id = (await page.locator('#new-key-id').textContent()).trim();
            recordKey(id, shown);
            // The limits the form set.
            assert.equal(await shownNumber(page.locator('#new-key-tpm data.tpm')), Number(limits.tpm));
            assert.equal(await shownNumber(page.locator('#new-key-quota data.quota')),
                         Number(limits.quota));
            assert.equal((await page.locator('#new-key-quota .period').textContent()).trim(),
                         t[limits.period]);
            await page.screenshot({ path: path.join(ARTIFACTS, `console-created-${lang}.png`),
                                    fullPage: true });

            await page.getByRole('button', { name: t.copy, exact: true }).click();
            await page.locator('#copy-status').filter({ hasText: t.copied }).waitFor();
            const copied = await page.evaluate(() => navigator.clipboard.readText());
            assert.equal(copied, shown, 'the clipboard holds the key shown');

            // The copied key works at once with the official SDK.
            const completion = await chat(copied);
            assert.equal(completion.choices[0].message.content, MOCK_TEXT);

            // Back to the list: the key is listed as active, never shown.
            await page.getByRole('link', { name: t.back }).click();
            await page.waitForLoadState('load');
            const row = page.locator(`tr[data-id="${id}"]`);
            await row.waitFor();
            assert.match(await row.textContent(), new RegExp(name));
            assert.equal(await row.locator('.badge').textContent(), t.active);
            assert.ok(!(await page.content()).includes(copied), 'the list shows no key');
            // Its tpm, quota with period, and the tokens of the one call.
            assert.equal(await shownNumber(row.locator('td.tpm data.tpm')), Number(limits.tpm));
            assert.equal(await shownNumber(row.locator('td.quota data.quota')), Number(limits.quota));
            assert.equal((await row.locator('td.quota .period').textContent()).trim(),
                         t[limits.period]);
            assert.equal(await shownNumber(row.locator('td.used data.used')), TOKENS_PER_CHAT);
            assert.equal((await row.locator('td.used .period').textContent()).trim(),
                         t[limits.usedIn]);
            // The key the CLI made sets no tpm: the server's default
            // (ClawdRouterDefaultTPM 50000) applies; it has no quota.
            const cliRow = page.locator('tr', { hasText: 'cli-made' });
            assert.equal((await cliRow.locator('td.tpm .default').textContent()).trim(),
                         `${t.defaultTpm} 50,000`);
            assert.equal(await shownNumber(cliRow.locator('td.tpm data.tpm')), 50000);
            assert.equal((await cliRow.locator('td.quota').textContent()).trim(), t.noLimit);
            assert.equal(await shownNumber(cliRow.locator('td.used data.used')), 0);
            // A second call shows in the count when the list is loaded again.
            await chat(copied);
            await page.reload();
            assert.equal(await shownNumber(row.locator('td.used data.used')), 2 * TOKENS_PER_CHAT);
            await page.screenshot({ path: path.join(ARTIFACTS, `console-list-${lang}.png`),
                                    fullPage: true });

            // Revoke, cancelling the confirmation first: nothing happens.
            page.once('dialog', (dialog) => dialog.dismiss());
            await row.getByRole('button', { name: t.revoke }).click();
            assert.equal(await row.locator('.badge').textContent(), t.active);
            assert.equal((await chat(copied)).choices[0].message.content, MOCK_TEXT);

            let asked = '';
            page.once('dialog', (dialog) => {
                asked = dialog.message();
                dialog.accept();
            });
            await Promise.all([
                page.waitForURL(/\?done=revoked$/),
                row.getByRole('button', { name: t.revoke }).click(),
            ]);
            assert.match(asked, new RegExp(t.confirm.replace('?', '\\?')));
            assert.match(asked, new RegExp(name));
            assert.match(await page.locator('.flash.ok').textContent(), new RegExp(t.revokedNotice));
            const revokedRow = page.locator(`tr[data-id="${id}"]`);
            assert.equal(await revokedRow.locator('.badge').textContent(), t.revoked);
            assert.equal(await revokedRow.getByRole('button').count(), 0);
            await page.screenshot({ path: path.join(ARTIFACTS, `console-revoked-${lang}.png`),
                                    fullPage: true });

            // The SDK's next call with that key: an authentication error.
            await assert.rejects(chat(copied), (err) => {
                assert.ok(err instanceof OpenAI.AuthenticationError,
                          `expected AuthenticationError, got ${err && err.constructor.name}`);
                assert.equal(err.status, 401);
                assert.equal(err.code, 'invalid_api_key');
                return true;
            });

            // The switch changes the language, and it is remembered.
            await page.getByRole('link', { name: t.other, exact: true }).click();
            await page.waitForLoadState('load');
            assert.equal(await page.locator('h1').first().textContent(), t.otherHeading);
            await page.goto(CONSOLE_URL);
            assert.equal(await page.locator('h1').first().textContent(), t.otherHeading);

            assert.deepEqual(page.problems, [], 'no script error, no CSP violation');
        } finally {
            await context.close();
        }
    });
}

test('console token fields: the browser and the server refuse bad values', async () => {
    const t = TEXT.en;
    const { context, page } = await signedIn('en');
    try {
        await page.goto(CONSOLE_URL);
        const before = await page.locator('table.keys tbody tr').count();
        // The browser refuses a negative or fractional number itself.
        for (const bad of ['-5', '1.5']) {
            const form = await fillCreateForm(page, t, { name: 'bad-tokens', models: '*', rpm: '',
                                                          expires: '', tpm: bad });
            await form.getByRole('button', { name: t.create }).click();
            const tpm = form.locator('input[name=tpm]');
            assert.equal(await tpm.evaluate((el) => el.validity.valid), false, bad);
            assert.ok((await tpm.evaluate((el) => el.validationMessage)).length > 0, bad);
            assert.equal(await page.locator('.flash.err').count(), 0, 'nothing was posted');
            await page.goto(CONSOLE_URL);
        }
        // A browser that does not check (or a hand-made post): the server
        // refuses, says why at the top and next to the field, keeps the value.
        const form = await fillCreateForm(page, t, { name: 'bad-tokens', models: '*', rpm: '',
                                                      expires: '', tpm: '-5', quota: '10' });
        await form.evaluate((el) => { el.noValidate = true; });
        const [response] = await Promise.all([
            page.waitForResponse((r) => r.request().method() === 'POST'),
            form.getByRole('button', { name: t.create }).click(),
        ]);
        await page.waitForLoadState('load');
        assert.equal(response.status(), 400);
        assert.equal((await page.locator('.flash.err').textContent()).trim(), t.errTpm);
        const tpm = page.locator('input[name=tpm]');
        assert.equal(await tpm.getAttribute('aria-invalid'), 'true');
        assert.equal(await tpm.inputValue(), '-5');
        assert.equal(await page.locator('input[name=quota]').inputValue(), '10');
        assert.equal((await page.locator('#error-tpm').textContent()).trim(), t.errTpm);
        assert.ok(await page.locator('#error-tpm').isVisible());
        assert.equal(await page.locator('details.create').getAttribute('open'), '');
        assert.equal(await page.locator('table.keys tbody tr').count(), before, 'no key was made');
        await page.screenshot({ path: path.join(ARTIFACTS, 'console-invalid-tpm-en.png'),
                                fullPage: true });
        // Chromium reports the refused post's 400 itself; nothing else.
        const refused = 'console error: Failed to load resource: the server responded '
                        + 'with a status of 400 (Bad Request)';
        assert.deepEqual(page.problems, [refused], 'no script error, no CSP violation');
    } finally {
        await context.close();
    }
});

test('console without JavaScript: confirmation page before a revoke', async () => {
    const t = TEXT.zh;
    const { context, page } = await signedIn('zh', { javaScriptEnabled: false });
    try {
        await page.goto(CONSOLE_URL);
        const name = `nojs-${Date.now()}`;
        await createKey(page, t, { name, models: '*', rpm: '', expires: '' });
        const key = await page.locator('#new-key').inputValue();
        assert.match(key, KEY_RE);
        const id = (await page.locator('#new-key-id').textContent()).trim();
        recordKey(id, key);
        assert.ok((await chat(key)).choices.length > 0);

        await page.goto(CONSOLE_URL);
        await page.locator(`tr[data-id="${id}"]`).getByRole('button', { name: t.revoke }).click();
        await page.waitForLoadState('load');
        assert.equal(await page.locator('h1').textContent(), t.confirm);
        assert.match(await page.locator('main').textContent(), new RegExp(id));
        // Still usable until confirmed.
        assert.ok((await chat(key)).choices.length > 0);
        await Promise.all([
            page.waitForURL(/\?done=revoked$/),
            page.locator('main form').getByRole('button', { name: t.revoke }).click(),
        ]);
        assert.equal(await page.locator(`tr[data-id="${id}"] .badge`).textContent(), t.revoked);
        await assert.rejects(chat(key), OpenAI.AuthenticationError);
    } finally {
        await context.close();
    }
});

test('console on a phone-sized screen, and without credentials', async () => {
    const { context, page } = await signedIn('zh', {
        viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
    });
    try {
        await page.goto(CONSOLE_URL);
        // The table becomes one card per key: no sideways scrolling.
        const overflow = await page.evaluate(
            () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
        await page.screenshot({ path: path.join(ARTIFACTS, 'console-list-mobile-zh.png'),
                                fullPage: true });
        assert.deepEqual(page.problems, []);
    } finally {
        await context.close();
    }

    // Chromium gives up on a 401 it has no credentials for; ask its HTTP
    // client instead.
    const anonymous = await playwrightRequest.newContext();
    try {
        const response = await anonymous.get(CONSOLE_URL);
        assert.equal(response.status(), 401);
        assert.match(response.headers()['www-authenticate'], /^Basic /);
        assert.ok(!(await response.text()).includes('csrf'));
    } finally {
        await anonymous.dispose();
    }
});
