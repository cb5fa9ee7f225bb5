// Ricochet policy lookup for Haraka 3 (https://haraka.github.io): asks Ricochet's /v1/policy at
// each RCPT, defers or rejects with Ricochet's text, quarantines held mail, and lets the mail
// through if Ricochet does not answer in time (fail open).
//
// Install: copy this file to plugins/ricochet.js, list `ricochet` in config/plugins after the
// auth plugin (it reads the account that logged in), and write config/ricochet.ini with `url`
// (http://127.0.0.1:8025/v1/policy), `token` (a Ricochet token of role mta; or set the
// environment variable RICOCHET_MTA_TOKEN) and `timeout` (seconds, 2 by default).
//
// For `hold`, list queue/quarantine before your queue plugin: a held message is accepted and
// kept in its quarantine directory, under ricochet/, until someone looks at it.
//
// Haraka runs a plugin in a sandbox that has `fetch` but neither URLSearchParams nor AbortSignal
// (Haraka 3.3 plugins.js): hence node:url, and node:http with a timer, here.
const http = require('node:http');
const https = require('node:https');
const { URL, URLSearchParams } = require('node:url');
const DSN = require('haraka-dsn');

exports.register = function () {
    this.load_ricochet_ini();
};

exports.load_ricochet_ini = function () {
    this.cfg = this.config.get('ricochet.ini', () => this.load_ricochet_ini());
};

// Haraka 3 turned Address#address() into a property (with a callable shim until 2027).
function address(addr) {
    if (!addr) return '';
    return String(typeof addr.address === 'function' ? addr.address() : addr.address);
}

// GET `url`; the parsed JSON answer, or an error after `timeout` ms or on anything but a 200.
function lookup(url, token, timeout) {
    return new Promise((resolve, reject) => {
        const client = url.protocol === 'https:' ? https : http;
        const headers = { Accept: 'application/json', Authorization: `Bearer ${token}` };
        const request = client.get(url, { headers }, (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk) => { body += chunk; });
            response.on('error', reject);
            response.on('end', () => {
                clearTimeout(timer);
                if (response.statusCode !== 200) return reject(new Error(`HTTP ${response.statusCode}`));
                try { resolve(JSON.parse(body)); } catch (err) { reject(err); }
            });
        });
        const timer = setTimeout(() => request.destroy(new Error(`no answer in ${timeout} ms`)), timeout);
        request.on('error', (err) => { clearTimeout(timer); reject(err); });
    });
}

// The SMTP reply for a defer or reject: Ricochet's code, enhanced status (4.7.1) and text.
function reply(answer) {
    const [, subject, detail] = String(answer.status || '').split('.').map(Number);
    return DSN.create(answer.smtp_code, answer.smtp_text, subject, detail);
}

exports.hook_rcpt = async function (next, connection, params) {
    const txn = connection.transaction;
    const cfg = this.cfg.main;
    try {
        const url = new URL(cfg.url);
        url.search = new URLSearchParams({
            protocol_state: 'RCPT',
            instance: txn.uuid,
            account: connection.notes.auth_user || '',
            sender: address(txn.mail_from),
            recipient: address(params[0]),
            client_address: connection.remote.ip,
        }).toString();
        const token = cfg.token || process.env.RICOCHET_MTA_TOKEN;
        const answer = await lookup(url, token, 1000 * (Number(cfg.timeout) || 2));
        if (answer.action === 'defer') return next(DENYSOFT, reply(answer));
        if (answer.action === 'reject') return next(DENY, reply(answer));
        if (answer.action === 'hold') txn.notes.quarantine = 'ricochet';
    } catch (err) {
        connection.logerror(this, `ricochet did not answer (${err.message}); letting the mail through`);
    }
    return next();
};
