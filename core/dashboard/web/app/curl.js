// core/dashboard/web/app/curl.js: "copy as curl": a POSIX shell snippet that sends an event's exact
// request again.
//
// The body goes through a file written by `base64 -d`, since a shell word cannot hold every
// byte (NUL) and `--data-binary @file` sends a file unchanged. Headers are given in their order
// with -H; curl's own defaults that the original did not have are switched off, so that the
// request carries the same fields. Every word is single-quoted; bytes that are not printable
// text are written as octal escapes of printf, which POSIX defines.
// SPDX-License-Identifier: Apache-2.0

import {bytesToBase64, decodeHeaderField, exactField, strictUtf8Text} from './bytes.js';

// Fields curl adds by itself with --data-binary unless told otherwise.
const kCurlDefaults = ['User-Agent', 'Accept', 'Content-Type', 'Expect'];

/**
 * The snippet for `event` (the API's detail form, body included as `body`, a Uint8Array),
 * sent to `base` (the hook's ingest URL; a local server's URL skips the edge).
 */
export function curlCommand(event, body, base) {
  const fields = (event.headers || []).map(decodeHeaderField);
  const lines = [];
  lines.push(`# event ${event.id}: ${event.method} ${
      event.path || '/'}; change base to send it elsewhere`);
  lines.push(`base=${quote(new TextEncoder().encode(base))}`);
  if (body.length > 0) {
    lines.push(`printf '%s' '${bytesToBase64(body)}' | base64 -d > body.bin`);
  }

  const method =
      event.method === 'HEAD' ? '--head' : `-X ${quote(new TextEncoder().encode(event.method))}`;
  const words = [`curl --http1.1 --globoff --path-as-is ${method}`];
  for (const field of fields) {
    // curl reads "Name:" with nothing after it as "remove this header"; "Name;" is its way of
    // sending one with an empty value.
    const line = field.valueBytes.length === 0 ?
        concat(field.nameBytes, asciiBytes(';')) :
        concat(field.nameBytes, asciiBytes(': '), field.valueBytes);
    words.push(`-H ${quote(line)}`);
  }
  const present = new Set(fields.map((field) => lowerText(field.nameBytes)));
  for (const name of kCurlDefaults) {
    if (!present.has(name.toLowerCase())) words.push(`-H '${name}:'`);
  }
  if (body.length > 0) words.push('--data-binary @body.bin');

  const path = exactField(event, 'path');
  const query = exactField(event, 'query');
  const hasQuery = query.length > 0 || event.query_b64 !== undefined;
  const target = hasQuery ? concat(path, asciiBytes('?'), query) : path;
  words.push(target.length > 0 ? `"$base"${quote(target)}` : '"$base"');

  lines.push(words.join(' \\\n  '));
  return lines.join('\n') + '\n';
}

/**
 * `bytes` as one shell word. Printable text (UTF-8 without control characters) goes in single
 * quotes, a quote in it as '\''. Anything else is printed by printf from octal escapes inside
 * "$(...)", which keeps every byte but NUL and trailing newlines, neither of which a header,
 * path or query the edge accepted can hold.
 */
export function quote(bytes) {
  const text = strictUtf8Text(bytes);
  if (text !== null && !/[\u0000-\u001f\u007f]/.test(text)) {
    return `'${text.replace(/'/g, `'\\''`)}'`;
  }
  let format = '';
  for (const byte of bytes) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x25 && byte !== 0x5c) {
      format += String.fromCharCode(byte);
    } else {
      format += '\\' + byte.toString(8).padStart(3, '0');
    }
  }
  return `"$(printf '${format}')"`;
}

function asciiBytes(text) {
  return new TextEncoder().encode(text);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function lowerText(bytes) {
  return String.fromCharCode(...bytes).toLowerCase();
}
