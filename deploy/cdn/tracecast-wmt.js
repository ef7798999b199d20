// tracecast's reference CDN edge: nginx with its njs module (Debian's
// libnginx-mod-http-js, njs 0.7.9 or later) serving marked copies of A/B
// audio from a plain directory, by watermarking tokens the origin signs
// (docs/cdn.md). The edge holds only the origin's public key: it can check
// a token, never make one.
//
// GET /{content}/{tier}/{delivery}.flac, with `Authorization: Bearer WMT`
// or `?wmt=WMT`, answers the buyer's copy: the variants' shared header,
// then every frame (one mark unit each) from variant A or B as the token's
// pattern says. GET /{content}/{tier}/{delivery}.mp3 answers the same copy
// as MP3, frame by frame from the MP3 variants (each frame from the unit
// at the middle of its output), when the token names their index (tcmx).
// Range (one range), If-Range and HEAD are honoured.
//
// Variables (set in the server block):
//   $tracecast_variants  the folder `tracecast cdn publish` writes:
//                        {content}/{tier}/a.flac, b.flac, index
//                        (and a.mp3, b.mp3, mp3-index)
//   $tracecast_wmt_key   the origin's key as PEM (`tracecast cdn key`)

import fs from 'fs';
import hashes from 'crypto';

const MAX_TOKEN_BYTES = 64 * 1024;
const CHUNK = 1 << 20;

// Per worker: the key (by file) and frame indexes (by folder and hash).
let key = null;
const indexes = {};
const mp3Indexes = {};

function refuse(r, status, code, message) {
    r.headersOut['Content-Type'] = 'application/json';
    if (status === 401) {
        r.headersOut['WWW-Authenticate'] = 'Bearer realm="tracecast-cdn"';
    }
    r.return(status, JSON.stringify({ error: code, message: message }) + '\n');
}

async function publicKey(file) {
    if (key && key.file === file) {
        return key;
    }
    const pem = fs.readFileSync(file, 'utf8');
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    const k = await crypto.subtle.importKey(
        'spki', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    key = {
        file: file,
        key: k,
        // The key id tokens name: the first 8 bytes of the SHA-256 of the
        // SubjectPublicKeyInfo, in hex.
        kid: hashes.createHash('sha256').update(der).digest('hex').slice(0, 16),
    };
    return key;
}

function json64(part) {
    return JSON.parse(Buffer.from(part, 'base64url').toString());
}

// The token's claims, or a refusal [status, code, message].
async function verify(r, token) {
    if (token.length > MAX_TOKEN_BYTES) {
        return [401, 'bad_token', 'the watermarking token is too large'];
    }
    const parts = token.split('.');
    if (parts.length !== 3) {
        return [401, 'bad_token', 'the watermarking token is not a JWT'];
    }
    let header;
    let claims;
    try {
        header = json64(parts[0]);
        claims = json64(parts[1]);
    } catch (e) {
        return [401, 'bad_token', 'the watermarking token is not base64url JSON'];
    }
    // ES256 only: "none" or any algorithm a caller names is refused.
    if (header.alg !== 'ES256') {
        return [401, 'bad_token', 'the watermarking token is not signed with ES256'];
    }
    const k = await publicKey(r.variables.tracecast_wmt_key);
    if (header.kid !== k.kid) {
        return [401, 'bad_token', 'the watermarking token is signed by another key'];
    }
    const sig = Buffer.from(parts[2], 'base64url');
    const ok = await crypto.subtle.verify(
        { name: 'ECDSA', hash: 'SHA-256' }, k.key, sig, parts[0] + '.' + parts[1]);
    if (!ok) {
        return [401, 'bad_token', 'the watermarking token does not verify'];
    }
    if (claims.wmver !== 1 || claims.wmidtyp !== 0 || claims.wmidfmt !== 'base64url') {
        return [401, 'bad_token', 'the watermarking token is of a version this edge does not read'];
    }
    if (!(Date.now() / 1000 <= claims.exp)) {
        return [401, 'expired_token', 'the watermarking token has expired'];
    }
    return claims;
}

function u64(buf, at) {
    return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x100000000;
}

// A folder's frame index, checked against the token's hash of it and
// against both variants' lengths.
function frameIndex(folder, sha) {
    const known = indexes[folder];
    if (known && known.sha === sha) {
        return known;
    }
    const bytes = fs.readFileSync(folder + '/index');
    const got = hashes.createHash('sha256').update(bytes).digest('hex');
    if (got !== sha || bytes.length < 24 || bytes.slice(0, 8).toString() !== 'tcABflac') {
        return null;
    }
    const header = u64(bytes, 8);
    const frames = u64(bytes, 16);
    if (frames < 1 || bytes.length !== 24 + 8 * frames) {
        return null;
    }
    const offsets = [new Array(frames + 1), new Array(frames + 1)];
    for (let w = 0; w < 2; w++) {
        let at = header;
        for (let f = 0; f < frames; f++) {
            offsets[w][f] = at;
            at += bytes.readUInt32LE(24 + 4 * (w * frames + f));
        }
        offsets[w][frames] = at;
        const name = folder + (w ? '/b.flac' : '/a.flac');
        if (fs.statSync(name).size !== at) {
            return null;
        }
    }
    const index = { sha: sha, header: header, frames: frames, offsets: offsets };
    indexes[folder] = index;
    return index;
}

// A folder's MP3 frame index ("tcABmp3\0", frames as u64, then the
// samples per frame, the decoder's delay, the samples per unit and the
// unit's cut as u32, then every frame's size as u32), checked against the
// token's hash of it and both variants' lengths (the same).
function mp3Index(folder, sha) {
    const known = mp3Indexes[folder];
    if (known && known.sha === sha) {
        return known;
    }
    const bytes = fs.readFileSync(folder + '/mp3-index');
    const got = hashes.createHash('sha256').update(bytes).digest('hex');
    if (got !== sha || bytes.length < 32 || bytes.slice(0, 8).toString('hex') !== '746341426d703300') {
        return null;
    }
    const frames = u64(bytes, 8);
    const shape = {
        frameSamples: bytes.readUInt32LE(16),
        delay: bytes.readUInt32LE(20),
        unit: bytes.readUInt32LE(24),
        cut: bytes.readUInt32LE(28),
    };
    if (frames < 1 || shape.frameSamples < 1 || shape.unit < 1 || bytes.length !== 32 + 4 * frames) {
        return null;
    }
    const offsets = new Array(frames + 1);
    let at = 0;
    for (let f = 0; f < frames; f++) {
        offsets[f] = at;
        at += bytes.readUInt32LE(32 + 4 * f);
    }
    offsets[frames] = at;
    const names = ['/a.mp3', '/b.mp3'];
    for (let i = 0; i < names.length; i++) {
        if (fs.statSync(folder + names[i]).size !== at) {
            return null;
        }
    }
    const index = { sha: sha, frames: frames, offsets: offsets, shape: shape };
    mp3Indexes[folder] = index;
    return index;
}

// The MP3 copy's pieces: frame f from the variant of the unit holding the
// audio sample at the middle of its output (the decoder's delay counted).
function mp3Pieces(index, bits, units) {
    const s = index.shape;
    const out = [];
    for (let f = 0; f < index.frames; f++) {
        const middle = Math.max(0, f * s.frameSamples + Math.floor(s.frameSamples / 2) - s.delay);
        const u = Math.min(middle < s.unit + s.cut ? 0 : Math.floor((middle - s.cut) / s.unit), units - 1);
        const b = (bits[u >> 3] >> (7 - (u & 7))) & 1;
        const start = index.offsets[f];
        const len = index.offsets[f + 1] - start;
        const last = out[out.length - 1];
        if (last && last[0] === b && last[2] === start) {
            last[2] += len;
        } else {
            out.push([b, start, start + len, start]);
        }
    }
    return out;
}

// The copy's pieces: [variant, copy start, copy end, variant offset].
// Frame f is taken from unit f's variant (the last frame, which may hold
// only the shared start of a unit that never begins, from the last unit's).
function pieces(index, bits, units) {
    const out = [[0, 0, index.header, 0]];
    let at = index.header;
    for (let f = 0; f < index.frames; f++) {
        const u = Math.min(f, units - 1);
        const b = (bits[u >> 3] >> (7 - (u & 7))) & 1;
        const o = index.offsets[b];
        const len = o[f + 1] - o[f];
        const last = out[out.length - 1];
        if (last[0] === b && last[3] + (last[2] - last[1]) === o[f]) {
            last[2] += len;
        } else {
            out.push([b, at, at + len, o[f]]);
        }
        at += len;
    }
    return out;
}

// The one range asked for, [start, end) within `size`; null for the whole
// copy; 'bad' when it cannot be satisfied.
function range(r, size, etag) {
    const h = r.headersIn['Range'];
    if (!h) {
        return null;
    }
    const ifRange = r.headersIn['If-Range'];
    if (ifRange && ifRange !== etag) {
        return null;
    }
    const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
    if (!m || (m[1] === '' && m[2] === '')) {
        // Several ranges, or another unit: the whole copy (RFC 9110 lets
        // a server ignore a Range it does not serve).
        return null;
    }
    let start;
    let end;
    if (m[1] === '') {
        const n = Number(m[2]);
        start = Math.max(0, size - n);
        end = size;
    } else {
        start = Number(m[1]);
        end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
    }
    if (start >= size || start >= end) {
        return 'bad';
    }
    return [start, end];
}

// njs 0.7's r.send() takes strings only (a Buffer is thrown back): a
// chunk goes as a byte string there, as a Buffer where that is gone.
const body = typeof String.bytesFrom === 'function'
    ? (buf) => String.bytesFrom(buf)
    : (buf) => buf;

function pause() {
    return new Promise((resolve) => setTimeout(resolve, 0));
}

async function serve(r) {
    const m = /^\/(\d+)\/([a-z]+)\/(\d+)\.(flac|mp3)$/.exec(r.uri);
    if (!m) {
        return refuse(r, 404, 'not_found', 'no such copy');
    }
    if (r.method !== 'GET' && r.method !== 'HEAD') {
        r.headersOut['Allow'] = 'GET, HEAD';
        return refuse(r, 405, 'method', 'GET or HEAD');
    }
    const auth = r.headersIn['Authorization'] || '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : (r.args.wmt || '');
    if (!token) {
        return refuse(r, 401, 'no_token', 'a watermarking token is needed (Authorization: Bearer)');
    }
    let claims;
    try {
        claims = await verify(r, token);
    } catch (e) {
        r.error('tracecast-cdn: verifying a token: ' + e);
        return refuse(r, 500, 'key', 'this edge cannot read the origin\'s key');
    }
    if (Array.isArray(claims)) {
        return refuse(r, claims[0], claims[1], claims[2]);
    }
    // A token opens the one copy it names.
    if (String(claims.tcc) !== m[1] || claims.tct !== m[2] || String(claims.tcd) !== m[3]) {
        return refuse(r, 403, 'other_copy', 'the watermarking token is for another copy');
    }
    const folder = r.variables.tracecast_variants + '/' + m[1] + '/' + m[2];
    const mp3 = m[4] === 'mp3';
    if (mp3 && !claims.tcmx) {
        return refuse(r, 403, 'other_copy', 'the watermarking token opens no MP3 form of this copy');
    }
    const named = String(mp3 ? claims.tcmx : claims.tcix).toLowerCase();
    let index;
    try {
        index = mp3 ? mp3Index(folder, named) : frameIndex(folder, named);
    } catch (e) {
        r.warn('tracecast-cdn: ' + folder + ': ' + e);
        return refuse(r, 404, 'not_published', 'this content\'s variants are not published here');
    }
    if (!index) {
        return refuse(r, 409, 'other_variants',
            'the variants published here are not the ones the token was made for');
    }
    const bits = Buffer.from(String(claims.wmid), 'base64url');
    const units = claims.wmpatlen;
    const fits = mp3 ? units >= 1 : units >= index.frames - 1 && units <= index.frames;
    if (!fits || bits.length !== Math.ceil(units / 8)) {
        return refuse(r, 401, 'bad_token', 'the token\'s pattern does not fit these variants');
    }
    const all = mp3 ? mp3Pieces(index, bits, units) : pieces(index, bits, units);
    const size = all[all.length - 1][2];
    const etag = '"' + claims.tcd + '-' + named.slice(0, 16) + '"';
    const want = range(r, size, etag);
    if (want === 'bad') {
        r.headersOut['Content-Range'] = 'bytes */' + size;
        return refuse(r, 416, 'range', 'the range is outside the copy');
    }
    const start = want ? want[0] : 0;
    const end = want ? want[1] : size;
    r.status = want ? 206 : 200;
    r.headersOut['Content-Type'] = mp3 ? 'audio/mpeg' : 'audio/flac';
    r.headersOut['Accept-Ranges'] = 'bytes';
    r.headersOut['ETag'] = etag;
    // A buyer's own copy: never kept by a shared cache.
    r.headersOut['Cache-Control'] = 'private, no-store';
    r.headersOut['Content-Length'] = String(end - start);
    if (want) {
        r.headersOut['Content-Range'] = 'bytes ' + start + '-' + (end - 1) + '/' + size;
    }
    r.sendHeader();
    if (r.method === 'HEAD') {
        return r.finish();
    }
    const ext = mp3 ? '.mp3' : '.flac';
    const fds = [fs.openSync(folder + '/a' + ext), fs.openSync(folder + '/b' + ext)];
    try {
        let pi = 0;
        while (all[pi][2] <= start) {
            pi++;
        }
        let pos = start;
        while (pos < end) {
            // A chunk gathered from as many pieces as it spans, then sent.
            const n = Math.min(CHUNK, end - pos);
            const buf = Buffer.alloc(n);
            let filled = 0;
            while (filled < n) {
                const p = all[pi];
                const take = Math.min(p[2] - pos, n - filled);
                const got = fs.readSync(fds[p[0]], buf, filled, take, p[3] + (pos - p[1]));
                if (got !== take) {
                    throw new Error('a variant is shorter than its index');
                }
                filled += take;
                pos += take;
                if (pos === p[2]) {
                    pi++;
                }
            }
            r.send(body(buf));
            if (pos < end) {
                // Let nginx write what is queued before reading on.
                await pause();
            }
        }
    } finally {
        fs.closeSync(fds[0]);
        fs.closeSync(fds[1]);
    }
    r.finish();
}

export default { serve };
