// core/dashboard/web/app/bytes.js: the exact bytes of events as the API gives them (base64, and the
// "b64" header forms of docs/protocol.md), and how to show bytes that may not be text.
// SPDX-License-Identifier: Apache-2.0

// ignoreBOM keeps a leading byte order mark in the text: by default a decoder drops it, and then
// a body or a header value that starts with EF BB BF would be shown, edited and copied without
// the three bytes that may be why its signature failed.
const strictUtf8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true});
const lenientUtf8 = new TextDecoder('utf-8', {ignoreBOM: true});
const utf8Encoder = new TextEncoder();

/** Standard base64 (with padding) to bytes. */
export function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes to standard base64 with padding. */
export function bytesToBase64(bytes) {
  // In slices: String.fromCharCode(...bytes) overflows the stack on a large body.
  let binary = '';
  const slice = 0x8000;
  for (let i = 0; i < bytes.length; i += slice) {
    binary += String.fromCharCode(...bytes.subarray(i, i + slice));
  }
  return btoa(binary);
}

export function utf8Bytes(text) {
  return utf8Encoder.encode(text);
}

/** The text of `bytes` when they are valid UTF-8, else null. */
export function strictUtf8Text(bytes) {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Text for display: each byte that is not part of valid UTF-8 becomes U+FFFD. */
export function lenientUtf8Text(bytes) {
  return lenientUtf8.decode(bytes);
}

/**
 * Whether bytes are best shown as text: valid UTF-8 without control characters other than tab,
 * line feed, carriage return and form feed. Anything else is shown as hex first.
 */
export function looksLikeText(bytes) {
  const text = strictUtf8Text(bytes);
  if (text === null) return false;
  return !/[\u0000-\u0008\u000b\u000e-\u001f\u007f]/.test(text);
}

/**
 * One header field of the API's event form, as bytes and as display text. The forms are
 * ["Name","value"], ["Name","<base64 value>","b64"] and ["<base64 name>","<base64 value>",
 * "b64name"] (docs/protocol.md).
 */
export function decodeHeaderField(field) {
  const [name, value, form] = field;
  const nameBytes = form === 'b64name' ? base64ToBytes(name) : utf8Bytes(name);
  const valueBytes = form === 'b64' || form === 'b64name' ? base64ToBytes(value) : utf8Bytes(value);
  return {
    nameBytes,
    valueBytes,
    name: form === 'b64name' ? escapeNonUtf8(nameBytes) : name,
    value: form === 'b64' || form === 'b64name' ? escapeNonUtf8(valueBytes) : value,
    exact: form !== 'b64' && form !== 'b64name',
  };
}

/**
 * Text for bytes that may hold invalid UTF-8: the valid runs as they are, every other byte as
 * \xHH, so that no byte is hidden behind U+FFFD.
 */
export function escapeNonUtf8(bytes) {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) {
      out += '\\x' + bytes[i].toString(16).padStart(2, '0');
      i += 1;
    } else {
      out += lenientUtf8.decode(bytes.subarray(i, i + length));
      i += length;
    }
  }
  return out;
}

/** The length of the valid UTF-8 sequence starting at bytes[i], or 0 when there is none. */
function utf8SequenceLength(bytes, i) {
  const first = bytes[i];
  if (first < 0x80) return 1;
  let length;
  let min;
  if (first >= 0xc2 && first <= 0xdf) {
    length = 2;
    min = 0x80;
  } else if (first >= 0xe0 && first <= 0xef) {
    length = 3;
    min = 0x800;
  } else if (first >= 0xf0 && first <= 0xf4) {
    length = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + length > bytes.length) return 0;
  let codePoint = first & (0xff >> (length + 1));
  for (let k = 1; k < length; k++) {
    const next = bytes[i + k];
    if ((next & 0xc0) !== 0x80) return 0;
    codePoint = (codePoint << 6) | (next & 0x3f);
  }
  const surrogate = codePoint >= 0xd800 && codePoint <= 0xdfff;
  if (codePoint < min || codePoint > 0x10ffff || surrogate) return 0;
  return length;
}

/**
 * The UTF-16 index in `text` that a UTF-8 byte offset points at, for showing a server's byte
 * position (a query error) in the text the user typed.
 */
export function byteOffsetToIndex(text, byteOffset) {
  let bytes = 0;
  let index = 0;
  for (const character of text) {
    if (bytes >= byteOffset) break;
    const codePoint = character.codePointAt(0);
    bytes += codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
    index += character.length;
  }
  return index;
}

/** The exact bytes of an event's path or query: the *_b64 field when present, else the text. */
export function exactField(event, name) {
  const b64 = event[name + '_b64'];
  if (typeof b64 === 'string') return base64ToBytes(b64);
  return utf8Bytes(event[name] || '');
}
