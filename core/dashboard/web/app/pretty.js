// core/dashboard/web/app/pretty.js: bodies laid out for reading, without changing what they say.
//
// Each printer tokenizes and re-indents; no value is ever parsed into a JavaScript value and
// written back. A JSON number such as 12345678901234567890, 1e3, -0 or 1.50 is shown exactly as
// it was sent, which JSON.parse and JSON.stringify would not do. Input a printer cannot read
// whole gives null, and the caller shows the raw text instead.
//
// A printed body is a list of lines; a line is a list of pieces {kind, text}, where kind is one
// of indent, punct, key, string, number, literal, name (XML tag names and form field names),
// attr (XML attributes), text, comment. Joining the texts of a JSON line gives the tokens as
// sent plus the whitespace of the layout.
// SPDX-License-Identifier: Apache-2.0

const kIndent = '  ';

/** The printer for a body of `contentType` (the Content-Type header's value, or ''). */
export function prettyPrint(text, contentType = '') {
  const type = contentType.toLowerCase();
  if (/\bjson\b/.test(type)) return withKind('json', prettyJson(text));
  if (type.includes('application/x-www-form-urlencoded')) return withKind('form', prettyForm(text));
  if (/\bxml\b/.test(type)) return withKind('xml', prettyXml(text));

  // No telling type: go by the first character that is not white space.
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') return withKind('json', prettyJson(text));
  if (first === '<') return withKind('xml', prettyXml(text));
  return null;
}

function withKind(kind, lines) {
  return lines === null ? null : {kind, lines};
}

// --- JSON ----------------------------------------------------------------------------------

const jsonNumber = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const jsonString = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const jsonLiteral = /true|false|null/y;
const jsonSpace = /[ \t\n\r]*/y;

/** The tokens of `text` as {kind, text}, or null at the first byte that is not JSON. */
export function jsonTokens(text) {
  const tokens = [];
  let at = 0;
  const match = (pattern) => {
    pattern.lastIndex = at;
    const found = pattern.exec(text);
    return found && found.index === at ? found[0] : null;
  };
  while (true) {
    at += match(jsonSpace).length;
    if (at >= text.length) return tokens;
    const c = text[at];
    let token;
    if ('{}[]:,'.includes(c)) {
      token = {kind: 'punct', text: c};
    } else if (c === '"') {
      const found = match(jsonString);
      if (found === null) return null;
      token = {kind: 'string', text: found};
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const found = match(jsonNumber);
      if (found === null) return null;
      token = {kind: 'number', text: found};
    } else {
      const found = match(jsonLiteral);
      if (found === null) return null;
      token = {kind: 'literal', text: found};
    }
    tokens.push(token);
    at += token.text.length;
  }
}

/** JSON one member or element a line, two spaces an indent; null unless `text` is one value. */
export function prettyJson(text) {
  const tokens = jsonTokens(text);
  if (tokens === null || tokens.length === 0) return null;

  // A grammar check on the token stream: the layout below trusts the structure.
  if (!isOneJsonValue(tokens)) return null;

  const lines = [];
  let line = [];
  let depth = 0;
  const newLine = () => {
    lines.push(line);
    line = depth > 0 ? [{kind: 'indent', text: kIndent.repeat(depth)}] : [];
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const next = tokens[i + 1];
    if (token.text === '{' || token.text === '[') {
      line.push({kind: 'punct', text: token.text});
      // An empty object or array stays on its line.
      if (next && (next.text === '}' || next.text === ']')) {
        line.push({kind: 'punct', text: next.text});
        i++;
        continue;
      }
      depth++;
      newLine();
    } else if (token.kind === 'punct' && (token.text === '}' || token.text === ']')) {
      depth--;
      newLine();
      line.push({kind: 'punct', text: token.text});
    } else if (token.text === ',' && token.kind === 'punct') {
      line.push({kind: 'punct', text: ','});
      newLine();
    } else if (token.text === ':' && token.kind === 'punct') {
      line.push({kind: 'punct', text: ': '});
    } else if (token.kind === 'string' && next && next.kind === 'punct' && next.text === ':') {
      line.push({kind: 'key', text: token.text});
    } else {
      line.push(token);
    }
  }
  lines.push(line);
  return lines;
}

/** Whether the tokens form exactly one JSON value. */
function isOneJsonValue(tokens) {
  let at = 0;
  const value = () => {
    const token = tokens[at];
    if (!token) return false;
    if (token.kind !== 'punct') {
      at++;
      return true;
    }
    if (token.text === '{') return container('}', true);
    if (token.text === '[') return container(']', false);
    return false;
  };
  const isPunct = (text) => tokens[at] && tokens[at].kind === 'punct' && tokens[at].text === text;
  const container = (close, members) => {
    at++;
    if (isPunct(close)) {
      at++;
      return true;
    }
    while (true) {
      if (members) {
        if (!tokens[at] || tokens[at].kind !== 'string') return false;
        at++;
        if (!isPunct(':')) return false;
        at++;
      }
      if (!value()) return false;
      if (isPunct(close)) {
        at++;
        return true;
      }
      if (!isPunct(',')) return false;
      at++;
    }
  };
  return value() && at === tokens.length;
}

// --- application/x-www-form-urlencoded -----------------------------------------------------

/**
 * One field a line, `name = value`, both percent-decoded (and + as a space) where the bytes
 * are UTF-8; an escape whose bytes are not stays as it was sent. Null for an empty body.
 */
export function prettyForm(text) {
  if (text.length === 0 || /[\r\n]/.test(text)) return null;
  return text.split('&').map((field) => {
    const equals = field.indexOf('=');
    const name = equals < 0 ? field : field.slice(0, equals);
    const pieces = [{kind: 'name', text: decodeFormComponent(name)}];
    if (equals >= 0) {
      pieces.push({kind: 'punct', text: ' = '});
      pieces.push({kind: 'string', text: decodeFormComponent(field.slice(equals + 1))});
    }
    return pieces;
  });
}

function decodeFormComponent(text) {
  const spaced = text.replace(/\+/g, ' ');
  // Runs of escapes are decoded together, as multi-byte characters span several of them.
  return spaced.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

// --- XML -----------------------------------------------------------------------------------

/** The markup and text pieces of `text`, or null for an unterminated one. */
function xmlTokens(text) {
  const tokens = [];
  let at = 0;
  const until = (end, kind) => {
    const stop = text.indexOf(end, at);
    if (stop < 0) return false;
    tokens.push({kind, text: text.slice(at, stop + end.length)});
    at = stop + end.length;
    return true;
  };
  while (at < text.length) {
    if (text[at] !== '<') {
      const stop = text.indexOf('<', at);
      const end = stop < 0 ? text.length : stop;
      tokens.push({kind: 'text', text: text.slice(at, end)});
      at = end;
      continue;
    }
    let ok;
    if (text.startsWith('<!--', at)) {
      ok = until('-->', 'comment');
    } else if (text.startsWith('<![CDATA[', at)) {
      ok = until(']]>', 'cdata');
    } else if (text.startsWith('<?', at)) {
      ok = until('?>', 'declaration');
    } else if (text.startsWith('<!', at)) {
      ok = until('>', 'declaration');
    } else {
      ok = tagToken();
    }
    if (!ok) return null;
  }
  return tokens;

  // A tag ends at the first '>' outside quoted attribute values.
  function tagToken() {
    let quote = null;
    for (let i = at + 1; i < text.length; i++) {
      const c = text[i];
      if (quote) {
        if (c === quote) quote = null;
      } else if (c === '"' || c === '\'') {
        quote = c;
      } else if (c === '>') {
        const tag = text.slice(at, i + 1);
        const name = /^<\/?([^\s/>]+)/.exec(tag);
        if (!name) return false;
        const kind = tag[1] === '/' ? 'close' : tag.endsWith('/>') ? 'empty' : 'open';
        tokens.push({kind, text: tag, name: name[1]});
        at = i + 1;
        return true;
      }
    }
    return false;
  }
}

/**
 * One element a line, indented by depth; an element holding only text keeps it on its line.
 * Text is shown as sent but for the white space around it; tags keep their attributes as they
 * were written. Null when tags do not nest.
 */
export function prettyXml(text) {
  const tokens = xmlTokens(text);
  if (tokens === null) return null;
  const lines = [];
  const open = [];
  const indent = () => open.length > 0 ? [{kind: 'indent', text: kIndent.repeat(open.length)}] : [];
  let sawElement = false;

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.kind === 'text') {
      const trimmed = token.text.trim();
      if (trimmed) lines.push([...indent(), {kind: 'text', text: trimmed}]);
      continue;
    }
    if (token.kind === 'close') {
      if (open.pop() !== token.name) return null;
      lines.push([...indent(), ...tagPieces(token.text)]);
      continue;
    }
    if (token.kind === 'open') {
      sawElement = true;
      // <a>text</a> on one line.
      const inner = tokens[i + 1];
      const after = tokens[i + 2];
      if (inner && inner.kind === 'text' && after && after.kind === 'close' &&
          after.name === token.name) {
        lines.push([
          ...indent(), ...tagPieces(token.text), {kind: 'text', text: inner.text.trim()},
          ...tagPieces(after.text)
        ]);
        i += 2;
        continue;
      }
      lines.push([...indent(), ...tagPieces(token.text)]);
      open.push(token.name);
      continue;
    }
    if (token.kind === 'empty') {
      sawElement = true;
      lines.push([...indent(), ...tagPieces(token.text)]);
      continue;
    }
    // Comments, CDATA sections, declarations: one line each, as written.
    const kind = token.kind === 'comment' ? 'comment' : token.kind === 'cdata' ? 'string' : 'punct';
    lines.push([...indent(), {kind, text: token.text}]);
  }
  if (open.length > 0 || !sawElement) return null;
  return lines;
}

/** A tag as pieces: its name, its attributes as written, the brackets. */
function tagPieces(tag) {
  const found = /^(<\/?)([^\s/>]+)([\s\S]*?)(\/?>)$/.exec(tag);
  const pieces = [{kind: 'punct', text: found[1]}, {kind: 'name', text: found[2]}];
  if (found[3]) pieces.push({kind: 'attr', text: found[3]});
  pieces.push({kind: 'punct', text: found[4]});
  return pieces;
}
