// app.js: the cvm-vmmd web UI (docs/daemons/cvm-vmmd-webui.md). Plain DOM,
// no framework; every request goes to the origin that served the page.
import { composeAppId, cryptoMissing, encryptEnv, fromHex, parseEnvLines, toHex } from './envcrypt.js';
import { checkEnvKey } from './kmssig.js';

const REFRESH_MS = 3000;
const LOG_KEEP_CHARS = 512 * 1024;
const TOKEN_KEY = 'cvm-vmmd-token';
const PIN_KEY = 'cvm-vmmd-kms-pubkey';

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let tokenWait = null;
// After the user cancels the token prompt, 401s are shown as errors rather
// than prompting again at every refresh, until "Access token…" is used.
let tokenDeclined = false;
let logAbort = null;

// --- messages ---------------------------------------------------------------

function showError(msg) {
	const e = $('error');
	e.textContent = msg;
	e.hidden = false;
	$('notice').hidden = true;
}
function clearError() {
	$('error').hidden = true;
	$('error').textContent = '';
}
function showNotice(msg) {
	const n = $('notice');
	n.textContent = msg;
	n.hidden = false;
}

// --- transport --------------------------------------------------------------

function authHeaders() {
	return token ? { Authorization: 'Bearer ' + token } : {};
}

// askToken opens the token dialog and resolves when the user answers (true:
// a token was given). Concurrent callers share one dialog.
function askToken(why) {
	if (tokenWait)
		return tokenWait;
	const dlg = $('token-dialog');
	$('token-why').textContent = why;
	$('token').value = '';
	tokenWait = new Promise((resolve) => {
		dlg.addEventListener('close', () => {
			tokenWait = null;
			if (dlg.returnValue === 'ok' && $('token').value !== '') {
				token = $('token').value;
				sessionStorage.setItem(TOKEN_KEY, token);
				resolve(true);
			} else {
				resolve(false);
			}
			$('token').value = '';
		}, { once: true });
	});
	dlg.showModal();
	return tokenWait;
}

// authFetch is fetch with the token; on 401 it asks for a token and retries.
async function authFetch(url, init = {}) {
	for (;;) {
		const res = await fetch(url, { ...init, headers: { ...(init.headers || {}), ...authHeaders() } });
		if (res.status !== 401)
			return res;
		const msg = await errorText(res);
		if (tokenDeclined)
			throw new Error(`${msg} (use "Access token…")`);
		const given = await askToken(token ? `The token was refused (${msg}). Enter another.` :
			`This cvm-vmmd asks for a token: ${msg}`);
		if (!given) {
			tokenDeclined = true;
			throw new Error(msg);
		}
	}
}

async function errorText(res) {
	const text = await res.text();
	try {
		const j = JSON.parse(text);
		if (j && typeof j.error === 'string')
			return j.error;
	} catch (_) { /* not JSON: show it as it is */ }
	return `HTTP ${res.status}${text ? ': ' + text.slice(0, 300) : ''}`;
}

// rpc calls a Vmm method (POST /prpc/<Method>?json) and returns its reply;
// it throws an Error carrying the daemon's message.
async function rpc(method, args = {}) {
	const res = await authFetch(`/prpc/${method}?json`, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify(args),
	});
	if (!res.ok)
		throw new Error(`${method}: ${await errorText(res)}`);
	const text = await res.text();
	return text === '' ? null : JSON.parse(text);
}

// --- compose input ------------------------------------------------------------

// composeSource keeps the exact bytes of a chosen file; the textarea's
// text is used only when no file is chosen. A file's bytes must be UTF-8
// (the RPC carries the compose as a JSON string); they are never parsed
// and written again, so the VMM hashes what the user chose.
function composeSource(textId, fileId, infoId) {
	const src = { bytes: null, name: '' };
	const area = $(textId), file = $(fileId), info = $(infoId);
	file.addEventListener('change', async () => {
		src.bytes = null;
		info.textContent = '';
		area.disabled = false;
		const f = file.files && file.files[0];
		if (!f)
			return;
		const bytes = new Uint8Array(await f.arrayBuffer());
		try {
			new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
		} catch (_) {
			showError(`${f.name} is not UTF-8 text: choose the app-compose.json file.`);
			file.value = '';
			return;
		}
		src.bytes = bytes;
		src.name = f.name;
		area.disabled = true;
		info.textContent = `Using ${f.name}: ${bytes.length} bytes`;
		if (!cryptoMissing()) {
			const { composeHash, appId } = await composeAppId(bytes);
			info.textContent += `, SHA-256 ${composeHash} (app id ${appId} unless given)`;
		}
	});
	return {
		// bytes: the compose's bytes and its text (the same bytes decoded).
		get() {
			if (src.bytes) {
				const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(src.bytes);
				return { bytes: src.bytes, text };
			}
			const text = area.value;
			return { bytes: new TextEncoder().encode(text), text };
		},
		reset() {
			src.bytes = null;
			file.value = '';
			area.disabled = false;
			area.value = '';
			info.textContent = '';
		},
	};
}

// encryptFor encrypts NAME=value lines for `appId` (hex) with the key the
// VMM hands out; '' when there are no variables.
async function encryptFor(envText, appId) {
	const env = parseEnvLines(envText);
	if (env.length === 0)
		return '';
	const missing = cryptoMissing();
	if (missing)
		throw new Error(missing);
	const answer = await rpc('GetAppEnvEncryptPubKey', { app_id: appId });
	if (!answer || typeof answer.public_key !== 'string')
		throw new Error('GetAppEnvEncryptPubKey: the answer has no public_key');
	const pub = fromHex(answer.public_key);
	if (pub.length !== 32)
		throw new Error(`GetAppEnvEncryptPubKey: the public key is ${pub.length} bytes, not 32`);
	const pin = $('d-kms-pin').value.trim();
	if (pin !== '') {
		try {
			checkEnvKey({
				kmsPubHex: pin, appId: fromHex(appId), pub, timestamp: answer.timestamp,
				sigV1: fromHex(answer.signature_v1 || ''), now: Date.now() / 1000,
			});
		} catch (e) {
			throw new Error(`The env encryption key from the VMM was refused, nothing was sent: ${e.message}`);
		}
	}
	return toHex(await encryptEnv(env, pub));
}

function showTrust() {
	const pin = $('d-kms-pin').value.trim();
	$('env-trust').textContent = pin === '' ?
		'The encryption key is taken from the VMM (GetAppEnvEncryptPubKey) unchecked: give the KMS\'s key ' +
		'above to have its signature checked here.' :
		'The encryption key must carry this KMS\'s signature (signature_v1, at most 300 s old), checked in ' +
		'this browser; otherwise nothing is sent.';
}

function parsePorts(text) {
	const ports = [];
	for (const raw of text.split(/\r?\n/)) {
		const line = raw.trim();
		if (line === '')
			continue;
		const parts = line.split(':');
		if (parts.length !== 3 && parts.length !== 4)
			throw new Error(`port "${line}": expected tcp:[address:]host_port:vm_port`);
		const protocol = parts[0];
		if (protocol !== 'tcp' && protocol !== 'udp')
			throw new Error(`port "${line}": the protocol is tcp or udp`);
		const host_address = parts.length === 4 ? parts[1] : '';
		const host = Number(parts[parts.length - 2]), vm = Number(parts[parts.length - 1]);
		for (const p of [host, vm])
			if (!Number.isInteger(p) || p < 1 || p > 65535)
				throw new Error(`port "${line}": ports are 1-65535`);
		const m = { protocol, host_port: host, vm_port: vm };
		if (host_address)
			m.host_address = host_address;
		ports.push(m);
	}
	return ports;
}

// --- the VM list ---------------------------------------------------------------

function fmtUptime(v) {
	if (typeof v === 'string')
		return v;
	if (typeof v !== 'number' || v <= 0)
		return '';
	const d = Math.floor(v / 86400), h = Math.floor(v / 3600) % 24, m = Math.floor(v / 60) % 60, s = v % 60;
	return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + s + 's';
}

function vmPorts(vm) {
	const list = (vm.configuration && vm.configuration.ports) || vm.ports || [];
	return list.map((p) => `${p.protocol || 'tcp'}:${p.host_address ? p.host_address + ':' : ''}` +
		`${p.host_port}→${p.vm_port}`).join(', ');
}

function button(label, name, handler) {
	const b = document.createElement('button');
	b.type = 'button';
	b.textContent = label;
	b.setAttribute('aria-label', `${label} ${name}`);
	b.addEventListener('click', handler);
	return b;
}

function cell(tr, text, cls) {
	const td = document.createElement('td');
	td.textContent = text;
	if (cls)
		td.className = cls;
	tr.appendChild(td);
	return td;
}

// makeRow builds the row of a VM: its cells (filled by fillRow) and its
// buttons, which act on the VM as fillRow last saw it.
function makeRow(vm) {
	const tr = document.createElement('tr');
	tr.dataset.id = vm.id;
	tr.vm = vm;
	const name = cell(tr, '');
	const nameText = document.createElement('span');
	const small = document.createElement('div');
	small.className = 'mono muted';
	small.textContent = vm.id;
	name.append(nameText, small);
	for (const cls of ['status', '', 'mono', '', ''])
		cell(tr, '', cls);
	const actions = cell(tr, '');
	actions.append(
		button('Start', vm.name, () => act('StartVm', tr.vm, `Started ${tr.vm.name}.`)),
		button('Stop', vm.name, () => act('StopVm', tr.vm, `Stopped ${tr.vm.name}.`)),
		button('Shut down', vm.name, () => act('ShutdownVm', tr.vm, `Shutting down ${tr.vm.name}.`)),
		button('Upgrade', vm.name, () => openUpgrade(tr.vm)),
		button('Logs', vm.name, () => followLogs(tr.vm)),
		button('Remove', vm.name, () => confirmRemove(tr.vm)));
	return tr;
}

function setText(el, text) {
	if (el.textContent !== text)
		el.textContent = text;
}

function fillRow(tr, vm) {
	const status = String(vm.status || vm.state || '');
	const td = tr.cells;
	tr.vm = vm;
	tr.dataset.name = vm.name;
	tr.dataset.status = status;
	setText(td[0].firstChild, vm.name);
	setText(td[1], status);
	td[1].className = 'status status-' + status;
	setText(td[2], [vm.boot_progress, vm.boot_error, vm.last_error].filter(Boolean).join(' — '));
	setText(td[3], vm.app_id || '');
	setText(td[4], vmPorts(vm));
	setText(td[5], fmtUptime(vm.uptime));
}

// renderVms updates the table in place: rows (and their buttons) live as
// long as their VM, so a refresh never takes a button from under a click
// or the keyboard focus.
function renderVms(vms) {
	const body = $('vms').tBodies[0];
	const old = new Map(Array.from(body.rows, (tr) => [tr.dataset.id, tr]));
	let prev = null;
	for (const vm of vms) {
		let tr = old.get(vm.id);
		if (tr)
			old.delete(vm.id);
		else
			tr = makeRow(vm);
		fillRow(tr, vm);
		const want = prev ? prev.nextSibling : body.firstChild;
		if (want !== tr)
			body.insertBefore(tr, want);
		prev = tr;
	}
	for (const tr of old.values())
		tr.remove();
	$('no-vms').hidden = vms.length !== 0;
}

async function refresh() {
	try {
		const st = await rpc('Status', {});
		renderVms((st && st.vms) || []);
		$('refreshed').textContent = 'Last: ' + new Date().toLocaleTimeString();
	} catch (e) {
		showError(e.message);
	}
}

async function act(method, vm, done) {
	clearError();
	try {
		await rpc(method, { id: vm.id });
		showNotice(done);
	} catch (e) {
		showError(e.message);
	}
	refresh();
}

function confirmRemove(vm) {
	const dlg = $('confirm-dialog');
	$('confirm-text').textContent = `Remove ${vm.name} (${vm.id})? Its work directory and data disk are deleted.`;
	dlg.addEventListener('close', () => {
		if (dlg.returnValue === 'ok')
			act('RemoveVm', vm, `Removed ${vm.name}.`);
	}, { once: true });
	dlg.returnValue = '';
	dlg.showModal();
}

// --- deploy and upgrade -------------------------------------------------------------

const deployCompose = composeSource('d-compose', 'd-compose-file', 'd-compose-info');
const upgradeCompose = composeSource('u-compose', 'u-compose-file', 'u-compose-info');

async function deploy(ev) {
	ev.preventDefault();
	clearError();
	const btn = $('d-submit');
	btn.disabled = true;
	try {
		const compose = deployCompose.get();
		if (compose.bytes.length === 0)
			throw new Error('The app-compose.json is empty: paste it or choose a file.');
		let appId = $('d-app-id').value.trim().replace(/^0x/i, '').toLowerCase();
		if (appId !== '' && !/^[0-9a-f]{40}$/.test(appId))
			throw new Error('The app id is 40 hex digits (20 bytes).');
		const args = {
			name: $('d-name').value.trim(),
			image: $('d-image').value,
			compose_file: compose.text,
			vcpu: Number($('d-vcpu').value),
			memory: Number($('d-memory').value),
			disk_size: Number($('d-disk').value),
			ports: parsePorts($('d-ports').value),
		};
		if (appId !== '')
			args.app_id = appId;
		const images = $('d-app-images').value.trim().split(/[\s,]+/).filter((x) => x !== '');
		for (const img of images) {
			if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*\.tar$/.test(img))
				throw new Error(`app image "${img}": give the file name of a tarball in app_image_dir, NAME.tar`);
		}
		if (images.length !== 0)
			args.app_images = images;
		if ($('d-stopped').checked)
			args.stopped = true;
		const envText = $('d-env').value;
		if (parseEnvLines(envText).length !== 0) {
			const missing = cryptoMissing();
			if (missing)
				throw new Error(missing);
			if (appId === '')
				appId = (await composeAppId(compose.bytes)).appId;
			args.encrypted_env = await encryptFor(envText, appId);
		}
		const r = await rpc('CreateVm', args);
		showNotice(`Deployed ${args.name}${r && r.id ? ' as ' + r.id : ''}.`);
		const pin = $('d-kms-pin').value;
		$('deploy').reset();
		$('d-kms-pin').value = pin;
		deployCompose.reset();
	} catch (e) {
		showError(e.message);
	} finally {
		btn.disabled = false;
	}
	refresh();
}

let upgrading = null;

function openUpgrade(vm) {
	upgrading = vm;
	$('u-name').textContent = vm.name;
	upgradeCompose.reset();
	$('u-env').value = '';
	$('upgrade-dialog').returnValue = '';
	$('upgrade-dialog').showModal();
}

async function upgrade() {
	const dlg = $('upgrade-dialog');
	const vm = upgrading;
	upgrading = null;
	if (dlg.returnValue !== 'ok' || !vm)
		return;
	clearError();
	try {
		const compose = upgradeCompose.get();
		if (compose.bytes.length === 0)
			throw new Error('The new app-compose.json is empty.');
		const args = { id: vm.id, compose_file: compose.text };
		const envText = $('u-env').value;
		if (parseEnvLines(envText).length !== 0) {
			const missing = cryptoMissing();
			if (missing)
				throw new Error(missing);
			// The VM keeps its app id across upgrades: encrypt to that app's key.
			const appId = vm.app_id || (await composeAppId(compose.bytes)).appId;
			args.encrypted_env = await encryptFor(envText, appId);
		}
		await rpc('UpgradeApp', args);
		showNotice(`Upgraded ${vm.name}.`);
	} catch (e) {
		showError(e.message);
	} finally {
		$('u-env').value = '';
	}
	refresh();
}

// --- logs ------------------------------------------------------------------------------

async function followLogs(vm) {
	if (logAbort)
		logAbort.abort();
	const ctl = new AbortController();
	logAbort = ctl;
	const pre = $('logs');
	pre.textContent = '';
	$('logs-mode').textContent = '';
	$('logs-name').textContent = vm.name;
	$('logs-section').hidden = false;
	$('logs-stop').disabled = false;
	try {
		const res = await authFetch(`/logs?id=${encodeURIComponent(vm.id)}&follow=1&lines=200`,
			{ signal: ctl.signal });
		if (res.status === 400) {
			// A daemon that cannot stream: poll the tail instead.
			await res.text();
			await pollLogs(vm, ctl, pre);
			return;
		}
		if (!res.ok)
			throw new Error(`logs: ${await errorText(res)}`);
		const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
		for (;;) {
			const { value, done } = await reader.read();
			if (done)
				break;
			let text = pre.textContent + value;
			if (text.length > LOG_KEEP_CHARS)
				text = text.slice(text.length - LOG_KEEP_CHARS);
			const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
			pre.textContent = text;
			if (atEnd)
				pre.scrollTop = pre.scrollHeight;
		}
		pre.append('\n[end of log]\n');
	} catch (e) {
		if (e.name !== 'AbortError')
			showError(e.message);
	} finally {
		if (logAbort === ctl) {
			logAbort = null;
			$('logs-stop').disabled = true;
		}
	}
}

// pollLogs shows the last lines every few seconds until `ctl` aborts.
async function pollLogs(vm, ctl, pre) {
	$('logs-mode').textContent = '(polled: this cvm-vmmd does not stream logs)';
	while (!ctl.signal.aborted) {
		const res = await authFetch(`/logs?id=${encodeURIComponent(vm.id)}&lines=200`, { signal: ctl.signal });
		if (!res.ok)
			throw new Error(`logs: ${await errorText(res)}`);
		const text = await res.text();
		const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
		pre.textContent = text;
		if (atEnd)
			pre.scrollTop = pre.scrollHeight;
		await new Promise((resolve) => {
			const t = setTimeout(resolve, REFRESH_MS);
			ctl.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
		});
	}
}

// --- start -----------------------------------------------------------------------------

async function loadImages() {
	try {
		const r = await rpc('ListImages', {});
		const sel = $('d-image');
		sel.replaceChildren();
		for (const img of (r && r.images) || []) {
			const o = document.createElement('option');
			o.value = img.name;
			o.textContent = img.name + (img.version ? ` (${img.version})` : '') + (img.is_dev ? ' [dev]' : '');
			sel.appendChild(o);
		}
		if (sel.options.length === 0)
			showError('The VMM lists no image (ListImages is empty): put an image in its image_dir.');
	} catch (e) {
		showError(e.message);
	}
}

async function loadVersion() {
	try {
		const v = await rpc('Version', {});
		if (v && v.version)
			$('version').textContent = `version ${v.version}${v.rev ? ' (' + v.rev + ')' : ''}`;
	} catch (_) { /* the version is decoration; errors show elsewhere */ }
}

function init() {
	const missing = cryptoMissing();
	if (missing) {
		$('insecure').textContent = missing + ' Deploying without environment variables still works.';
		$('insecure').hidden = false;
	}
	$('d-kms-pin').value = localStorage.getItem(PIN_KEY) || '';
	$('d-kms-pin').addEventListener('input', () => {
		const pin = $('d-kms-pin').value.trim();
		if (pin === '')
			localStorage.removeItem(PIN_KEY);
		else
			localStorage.setItem(PIN_KEY, pin);
		showTrust();
	});
	showTrust();
	$('deploy').addEventListener('submit', deploy);
	$('upgrade-dialog').addEventListener('close', upgrade);
	$('logs-stop').addEventListener('click', () => logAbort && logAbort.abort());
	$('token-button').addEventListener('click', async () => {
		tokenDeclined = false;
		if (await askToken('The token for this cvm-vmmd (kept in this tab only).'))
			refresh();
	});
	loadVersion();
	loadImages();
	refresh();
	setInterval(refresh, REFRESH_MS);
}

init();
