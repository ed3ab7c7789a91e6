// core/dashboard/web/app/hexdump.js: bytes as rows of offset, hex and ASCII, sixteen bytes a row,
// byte for byte.
// SPDX-License-Identifier: Apache-2.0

export const kBytesPerRow = 16;

/** How many rows `length` bytes take. */
export function hexRowCount(length) {
  return Math.ceil(length / kBytesPerRow);
}

/**
 * Row `row` of `bytes`: the offset as eight hex digits, the bytes as two-digit hex (an extra
 * space after the eighth), and the bytes 0x20..0x7e as themselves with every other one as '.'.
 */
export function hexRow(bytes, row) {
  const start = row * kBytesPerRow;
  const slice = bytes.subarray(start, Math.min(start + kBytesPerRow, bytes.length));
  const hex = [];
  let ascii = '';
  for (let i = 0; i < slice.length; i++) {
    hex.push(slice[i].toString(16).padStart(2, '0') + (i === 7 ? ' ' : ''));
    ascii += slice[i] >= 0x20 && slice[i] <= 0x7e ? String.fromCharCode(slice[i]) : '.';
  }
  return {
    offset: start.toString(16).padStart(8, '0'),
    hex: hex.join(' ').trimEnd(),
    ascii,
  };
}
