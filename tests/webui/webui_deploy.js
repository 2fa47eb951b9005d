// The cvm-vmmd web UI in headless Chromium (driven by webui_deploy.sh, which
// starts the daemons and says what each environment variable holds).
// Through the page only: the page loads under its CSP without a script error
// or CSP violation; with another KMS key pinned, the env key is refused and
// nothing is sent; with the right one, a deploy with an uploaded
// app-compose.json (CRLF, non-ASCII, a trailing space: its exact bytes) and
// one env variable reaches the daemon as those bytes and an encrypted_env
// blob that `cvm app decrypt-env` opens with the key of the app id the page
// computed; the VM is listed running with that app id, its port and an
// uptime; the logs panel shows what the serial log gains (polled) and a
// streamed answer; a daemon refusal is shown as the daemon's message; the VM
// is stopped, upgraded (new exact bytes, new env for the same app id) and
// removed after confirmation; a daemon that wants a token makes the page
// ask for it; a non-secure origin makes the page say that it cannot
// encrypt. Screenshots go to $CVM_WEBUI_ART.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const E = (k) => {
	const v = process.env[k];
	if (v === undefined)
		throw new Error(`${k} is not set (run tests/webui/webui_deploy.sh)`);
	return v;
};
const { chromium } = require(path.join(E('CVM_WEBUI_NODE_MODULES'), 'playwright-core'));

const URL_ = E('CVM_WEBUI_URL');
const URL_AUTH = E('CVM_WEBUI_URL_AUTH');
const TOKEN = E('CVM_WEBUI_TOKEN');
const URL_INSECURE = E('CVM_WEBUI_URL_INSECURE');
const ART = E('CVM_WEBUI_ART');
const RUN = E('CVM_WEBUI_RUN');
const CVM = E('CVM_WEBUI_CVM');
const KEYFILE = E('CVM_WEBUI_KEYFILE');
const KMS_PUB = E('CVM_WEBUI_KMS_PUB');
const TMP = E('CVM_WEBUI_TMP');

const NAME = 'webapp';
const SECRET = 's3cr3t value=with=equals ü';
// CRLF line ends, a non-ASCII character and a trailing space: a page that
// re-serialised the compose would change these bytes.
const COMPOSE = fs.readFileSync(E('CVM_WEBUI_COMPOSE'));
const APP_ID = require('crypto').createHash('sha256').update(COMPOSE).digest('hex').slice(0, 40);

let failures = 0;
function check(cond, what) {
	if (cond) {
		console.log(`ok: ${what}`);
	} else {
		console.error(`FAIL: ${what}`);
		failures++;
	}
}

const shots = [];
async function shot(page, name) {
	const p = path.join(ART, name);
	await page.screenshot({ path: p, fullPage: true });
	shots.push(p);
}

function watchConsole(page, errors) {
	page.on('console', (m) => {
		if (m.type() === 'error')
			errors.push(m.text());
	});
	page.on('pageerror', (e) => errors.push(String(e)));
}

async function row(page, name) {
	return page.locator(`#vms tbody tr[data-name="${name}"]`);
}

async function waitStatus(page, name, status, ms = 30000) {
	await page.waitForSelector(`#vms tbody tr[data-name="${name}"][data-status="${status}"]`, { timeout: ms });
}

async function main() {
	const browser = await chromium.launch({
		executablePath: process.env.CVM_WEBUI_CHROMIUM || '/usr/bin/chromium',
		args: ['--no-sandbox', '--host-resolver-rules=MAP webui.test 127.0.0.1'],
	});
	try {
		await deployFlow(browser);
		await authFlow(browser);
		await insecureFlow(browser);
	} finally {
		await browser.close();
	}
	for (const s of shots)
		console.log(`screenshot: ${s}`);
	if (failures) {
		console.error(`${failures} check(s) failed`);
		process.exit(1);
	}
	console.log('webui_deploy: all checks passed');
}

async function deployFlow(browser) {
	const page = await browser.newPage();
	const errors = [];
	watchConsole(page, errors);
	const keyRequests = [];
	let createBody = null;
	page.on('request', (req) => {
		if (req.url().includes('/prpc/CreateVm'))
			createBody = req.postData();
	});
	// the page asks cvm-vmmd, which asks the KMS (webui_deploy.sh starts both)
	page.on('request', (req) => {
		if (req.url().includes('/prpc/GetAppEnvEncryptPubKey'))
			keyRequests.push(JSON.parse(req.postData() || '{}'));
	});

	const res = await page.goto(URL_);
	const h = res.headers();
	check(res.status() === 200, `GET / is 200 (${res.status()})`);
	check((h['content-type'] || '').startsWith('text/html'), `GET / is text/html (${h['content-type']})`);
	check(/default-src 'none'/.test(h['content-security-policy'] || '') &&
		/script-src 'self'/.test(h['content-security-policy'] || ''),
		`GET / carries the CSP (${h['content-security-policy']})`);
	const js = await page.request.get(new URL('/res/app.js', URL_).href);
	check(js.status() === 200 && (js.headers()['content-type'] || '').startsWith('text/javascript'),
		'GET /res/app.js is text/javascript');
	const trav = await page.request.get(new URL('/res/..%2fvmm.db', URL_).href);
	check(trav.status() === 404, `GET /res/..%2fvmm.db is refused (${trav.status()})`);

	await page.waitForSelector('#d-image option[value="dev0"]', { state: 'attached' });
	check(await page.locator('#insecure').isHidden(), 'on 127.0.0.1 the page has WebCrypto (no insecure banner)');
	await page.fill('#d-name', NAME);
	await page.selectOption('#d-image', 'dev0');
	await page.fill('#d-vcpu', '1');
	await page.fill('#d-memory', '128');
	await page.fill('#d-disk', '1');
	await page.fill('#d-ports', 'tcp:21005:80');
	await page.fill('#d-app-images', 'web.tar');
	await page.setInputFiles('#d-compose-file', { name: 'app-compose.json', mimeType: 'application/json', buffer: COMPOSE });
	await page.waitForFunction(() => document.getElementById('d-compose-info').textContent.includes('SHA-256'));
	const info = await page.textContent('#d-compose-info');
	check(info.includes(`${COMPOSE.length} bytes`), `the page shows the file's size (${info})`);
	await page.fill('#d-env', `# a comment\nSECRET_TOKEN=${SECRET}\n`);

	// Pinned to another KMS's key: the signature check refuses the env key
	// and nothing is sent.
	const otherKms = require('crypto').createECDH('secp256k1');
	otherKms.generateKeys();
	await page.fill('#d-kms-pin', otherKms.getPublicKey('hex', 'compressed'));
	await page.click('#d-submit');
	await page.waitForSelector('#error:not([hidden])', { timeout: 30000 });
	const pinErr = await page.textContent('#error');
	check(/refused, nothing was sent: the env key is not signed by the pinned KMS key/.test(pinErr),
		`an env key not signed by the pinned KMS is refused (${pinErr})`);
	check(createBody === null, 'no CreateVm was sent with a refused env key');
	await shot(page, '01-wrong-kms-pin.png');

	await page.fill('#d-kms-pin', KMS_PUB);
	check((await page.textContent('#env-trust')).includes('checked in this browser'),
		'with a pinned key the page says the signature is checked');
	await shot(page, '01-deploy-form.png');
	await page.click('#d-submit');
	await page.waitForFunction(() => !document.getElementById('notice').hidden ||
		!document.getElementById('error').hidden, null, { timeout: 30000 });
	const err = await page.locator('#error').isVisible() ? await page.textContent('#error') : '';
	check(err === '', `deploy shows no error (${err})`);
	check((await page.textContent('#notice')).includes(`Deployed ${NAME}`), 'deploy says it deployed');

	// The list shows it running, with the app id the page computed and its port.
	await waitStatus(page, NAME, 'running');
	const r = await row(page, NAME);
	const id = await r.getAttribute('data-id');
	const cells = await r.locator('td').allTextContents();
	check(cells[3] === APP_ID, `the list shows app id ${APP_ID} (${cells[3]})`);
	check(cells[4].includes('21005') && cells[4].includes('80'), `the list shows the port (${cells[4]})`);
	check(/\d+s/.test(cells[5]), `the list shows an uptime (${cells[5]})`);
	await shot(page, '02-listed-running.png');

	// What the daemon received: the exact compose bytes and a blob that opens.
	check(createBody !== null, 'the page sent CreateVm');
	const body = JSON.parse(createBody || '{}');
	check(Buffer.from(body.compose_file || '', 'utf8').equals(COMPOSE), 'compose_file is the file\'s exact bytes');
	const stored = fs.readFileSync(path.join(RUN, id, 'shared', 'app-compose.json'));
	check(stored.equals(COMPOSE), 'the work dir\'s app-compose.json is the file\'s exact bytes');
	check(JSON.stringify(body.app_images) === '["web.tar"]', `the page sent app_images (${JSON.stringify(body.app_images)})`);
	check(fs.existsSync(path.join(RUN, id, 'shared', 'images', 'web.tar')),
		'the app image tarball is in the VM\'s shared folder');
	check(keyRequests.length === 2 && keyRequests.every((k) => k.app_id === APP_ID),
		`GetAppEnvEncryptPubKey asked for app id ${APP_ID} (${JSON.stringify(keyRequests)})`);
	check(/^[0-9a-f]+$/.test(body.encrypted_env || '') && body.encrypted_env.length > 2 * 60,
		'encrypted_env is a hex blob');
	check(!createBody.includes('s3cr3t'), 'the value is not in the request in clear');
	const blob = path.join(TMP, 'env.hex');
	fs.writeFileSync(blob, body.encrypted_env || '');
	let plain = '';
	try {
		plain = execFileSync(CVM, ['app', 'decrypt-env', '--json', '--key-file', KEYFILE, blob], { encoding: 'utf8' });
	} catch (e) {
		plain = `decrypt-env failed: ${e.stderr || e}`;
	}
	let got = {};
	try {
		got = JSON.parse(plain);
	} catch (_) { /* checked below */ }
	check(got.SECRET_TOKEN === SECRET && Object.keys(got).length === 1,
		`cvm app decrypt-env opens the request's blob to the variable (${plain.trim().slice(0, 200)})`);
	const envFile = fs.readFileSync(path.join(RUN, id, 'shared', '.encrypted-env'));
	check(envFile.equals(Buffer.from(body.encrypted_env || '', 'hex')),
		'the work dir\'s .encrypted-env is the blob the page sent');

	// Logs: the panel shows what the VM's serial log gains (the daemon
	// streams it, or the page polls it when the daemon cannot).
	await r.locator('button', { hasText: 'Logs' }).click();
	await page.waitForSelector('#logs-section:not([hidden])');
	check(await page.textContent('#logs-name') === NAME, 'the logs panel names the VM');
	fs.appendFileSync(path.join(RUN, id, 'serial.log'), 'webui-log-marker-1\n');
	try {
		await page.waitForFunction(() => document.getElementById('logs').textContent.includes('webui-log-marker-1'),
			null, { timeout: 15000 });
		check(true, 'the logs panel shows a line added to the serial log');
	} catch (_) {
		check(false, `the logs panel shows a line added to the serial log (${await page.textContent('#logs')})`);
	}
	await page.click('#logs-stop');
	// The streaming reader itself, on a stream the test serves.
	await page.route('**/logs?*follow=1*', (route) => route.fulfill({ status: 200, contentType: 'text/plain',
		body: 'streamed-line-1\nstreamed-line-2\n' }));
	await r.locator('button', { hasText: 'Logs' }).click();
	await page.waitForFunction(() => document.getElementById('logs').textContent.includes('[end of log]'),
		null, { timeout: 15000 });
	check((await page.textContent('#logs')).startsWith('streamed-line-1\nstreamed-line-2\n'),
		'a streamed log is shown as it arrives, then its end');
	await page.unroute('**/logs?*follow=1*');

	// A refusal shows the daemon's own message.
	await page.fill('#d-name', 'toobig');
	await page.fill('#d-vcpu', '64');
	await page.fill('#d-compose', '{"manifest_version":2,"name":"toobig"}');
	await page.fill('#d-env', '');
	await page.click('#d-submit');
	await page.waitForSelector('#error:not([hidden])', { timeout: 15000 });
	const refusal = await page.textContent('#error');
	check(/CreateVm: .*max_vcpu/.test(refusal), `a refused deploy shows the daemon's message (${refusal})`);
	await shot(page, '03-refusal.png');

	// Stop, then remove after the confirmation.
	await r.locator('button', { hasText: /^Stop$/ }).click();
	await waitStatus(page, NAME, 'stopped');
	await shot(page, '04-stopped.png');

	// Upgrade the stopped VM: a new compose file and a new value, encrypted
	// to the VM's app id (the app keeps its identity across upgrades).
	const compose2 = Buffer.concat([COMPOSE, Buffer.from('\r\n')]);
	let upgradeBody = null;
	page.on('request', (req) => {
		if (req.url().includes('/prpc/UpgradeApp'))
			upgradeBody = req.postData();
	});
	await r.locator('button', { hasText: 'Upgrade' }).click();
	await page.waitForSelector('#upgrade-dialog[open]');
	await page.setInputFiles('#u-compose-file', { name: 'v2.json', mimeType: 'application/json', buffer: compose2 });
	await page.waitForFunction(() => document.getElementById('u-compose-info').textContent.includes('bytes'));
	await page.fill('#u-env', 'SECRET_TOKEN=v2');
	await shot(page, '04-upgrade.png');
	await page.click('#u-submit');
	await page.waitForFunction(() => !document.getElementById('notice').hidden &&
		document.getElementById('notice').textContent.includes('Upgraded') || !document.getElementById('error').hidden,
		null, { timeout: 30000 });
	const upErr = await page.locator('#error').isVisible() ? await page.textContent('#error') : '';
	check(upErr === '', `upgrade shows no error (${upErr})`);
	check(fs.readFileSync(path.join(RUN, id, 'shared', 'app-compose.json')).equals(compose2),
		'after Upgrade the work dir holds the new file\'s exact bytes');
	const up = JSON.parse(upgradeBody || '{}');
	check(keyRequests.length === 3 && keyRequests[2].app_id === APP_ID,
		`the upgrade's env is encrypted to the VM's app id (${JSON.stringify(keyRequests[2] || null)})`);
	fs.writeFileSync(blob, up.encrypted_env || '');
	let plain2 = '';
	try {
		plain2 = execFileSync(CVM, ['app', 'decrypt-env', '--json', '--key-file', KEYFILE, blob], { encoding: 'utf8' });
	} catch (e) {
		plain2 = `decrypt-env failed: ${e.stderr || e}`;
	}
	check(plain2.trim() === '{"SECRET_TOKEN":"v2"}', `the upgrade's blob opens to the new value (${plain2.trim()})`);
	check(fs.readFileSync(path.join(RUN, id, 'shared', '.encrypted-env')).equals(Buffer.from(up.encrypted_env || '', 'hex')),
		'the work dir\'s .encrypted-env is the upgrade\'s blob');
	await r.locator('button', { hasText: 'Remove' }).click();
	await page.waitForSelector('#confirm-dialog[open]');
	check((await page.textContent('#confirm-text')).includes(id), 'the confirmation names the VM');
	await page.click('#confirm-ok');
	await page.waitForSelector(`#vms tbody tr[data-name="${NAME}"]`, { state: 'detached', timeout: 30000 });
	check(!fs.existsSync(path.join(RUN, id)), 'the work dir is gone after Remove');
	await shot(page, '05-removed.png');
	// The refused CreateVm and a daemon that does not stream logs (400,
	// then polled) show as failed loads; nothing else may appear: no script
	// error, no CSP violation.
	const other = errors.filter((e) => !/Failed to load resource: the server responded with a status of 400/.test(e));
	check(other.length === 0, `no console error or CSP violation (${other.join(' | ')})`);
	await page.close();
}

async function authFlow(browser) {
	const page = await browser.newPage();
	const errors = [];
	watchConsole(page, errors);
	const res = await page.goto(URL_AUTH);
	check(res.status() === 200, 'the page loads without a token (its files hold no secret)');
	await page.waitForSelector('#token-dialog[open]', { timeout: 15000 });
	check((await page.textContent('#token-why')).includes('token'), 'a 401 makes the page ask for a token');
	await shot(page, '06-token-asked.png');
	await page.fill('#token', TOKEN);
	await page.click('#token-ok');
	await page.waitForSelector('#d-image option[value="dev0"]', { state: 'attached', timeout: 15000 });
	await page.waitForFunction(() => document.getElementById('refreshed').textContent !== '');
	check(await page.locator('#token-dialog[open]').count() === 0, 'with the token the page lists VMs and images');
	// The 401s before the token show as console errors of failed loads:
	// only those are expected.
	const other = errors.filter((e) => !/401/.test(e));
	check(other.length === 0, `no other console error (${other.join(' | ')})`);
	await page.close();
}

async function insecureFlow(browser) {
	const page = await browser.newPage();
	await page.goto(URL_INSECURE);
	await page.waitForSelector('#insecure:not([hidden])', { timeout: 15000 });
	check((await page.textContent('#insecure')).includes('not a secure context'),
		'on a non-secure origin the page says it cannot encrypt');
	await page.waitForSelector('#d-image option[value="dev0"]', { state: 'attached' });
	await page.fill('#d-name', 'insecure');
	await page.fill('#d-compose', '{"manifest_version":2,"name":"insecure"}');
	await page.fill('#d-env', 'A=b');
	await page.click('#d-submit');
	await page.waitForSelector('#error:not([hidden])', { timeout: 15000 });
	check((await page.textContent('#error')).includes('secure context'),
		'deploying env variables from a non-secure origin is refused with the reason');
	await shot(page, '07-insecure-origin.png');
	await page.close();
}

main().catch((e) => {
	console.error(`FAIL: ${e.stack || e}`);
	for (const s of shots)
		console.log(`screenshot: ${s}`);
	process.exit(1);
});
