// A fast reader for the plain subset of YAML that scenario files are written in: a top-level
// block mapping; block mappings and sequences (compact `- key: v` items too); one-line flow
// collections; plain, single- and double-quoted scalars without escapes; `|` and `|-` block
// scalars; comments. Anything else — anchors, tags, escapes, multi-line flow or plain scalars,
// duplicate keys, tabs, CRs, documents markers, any doubt — returns undefined and the caller
// uses js-yaml, which then also produces every error message. On what it accepts the result is
// js-yaml's (test/fast-yaml.test.ts compares them); plain scalars are resolved by the caller's
// schema, so they resolve exactly as js-yaml resolves them. It also notes the lines of the
// top-level keys and of the items of top-level block sequences (the steps), which js-yaml can
// only give through a per-node listener.

/** What the fast reader found: the document, and the lines of its top-level keys and list items. */
export interface FastYaml {
  readonly value: Record<string, unknown>;
  readonly keyLines: ReadonlyMap<string, number>;
  /** For each top-level value that is a block sequence: the line of each item. */
  readonly itemLines: ReadonlyMap<unknown, readonly number[]>;
}

/** Not in the subset: the caller falls back to js-yaml. */
const BAIL: unique symbol = Symbol('not in the fast subset');

// Characters js-yaml refuses or treats specially anywhere in a document: we leave those files to it.
const AWKWARD = /[\t\r\uFEFF\x85\u2028\u2029\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF\uD800-\uDFFF]/;

const SPACE = 32, NL = 10, HASH = 35, COLON = 58, DASH = 45, COMMA = 44;
const LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93, DQUOTE = 34, SQUOTE = 39, PIPE = 124;

/** A mapping key we accept: an identifier (it then resolves to itself unless it is null/bool-like). */
const isKeyStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isKeyChar = (c: number) => isKeyStart(c) || (c >= 48 && c <= 57) || c === DASH;
/** First characters of a plain scalar that YAML reads as an indicator (or that we leave to js-yaml). */
const isIndicator = (c: number) => c === 63 || c === COLON || c === COMMA || c === LBRACKET || c === RBRACKET || c === LBRACE
  || c === RBRACE || c === HASH || c === 38 || c === 42 || c === 33 || c === PIPE || c === 62 || c === 37 || c === 64 || c === 96
  || c === DQUOTE || c === SQUOTE;

/**
 * Read `text` if it is in the subset; `resolvePlain` turns a plain scalar into its value (the
 * schema's implicit types, in order, as js-yaml applies them). `maxDepth` bounds nesting.
 */
export function readFastYaml(text: string, resolvePlain: (s: string) => unknown, maxDepth: number): FastYaml | undefined {
  if (AWKWARD.test(text)) return undefined;
  const cache = new Map<string, unknown>();
  const plain = (s: string): unknown => {
    let v = cache.get(s);
    if (v === undefined && !cache.has(s)) cache.set(s, (v = resolvePlain(s)));
    return v;
  };
  const n = text.length;
  let pos = 0;
  let line = 1;
  let depth = 0;
  const keyLines = new Map<string, number>();
  const itemLines = new Map<unknown, number[]>();
  const bail = (): never => { throw BAIL; };

  /** Skip blank and comment-only lines from a line start; at the next content line, return its indent (pos at its first character), or -1 at the end. */
  const nextContent = (): number => {
    for (;;) {
      const start = pos;
      while (pos < n && text.charCodeAt(pos) === SPACE) pos++;
      if (pos >= n) return -1;
      const c = text.charCodeAt(pos);
      if (c === NL) { pos++; line++; continue; }
      if (c === HASH) { skipToEol(); continue; }
      return pos - start;
    }
  };
  /** From inside a line, skip to the start of the next line (after a comment, say). */
  const skipToEol = (): void => {
    const nl = text.indexOf('\n', pos);
    if (nl === -1) pos = n; else { pos = nl + 1; line++; }
  };
  /** The rest of the line must be blank or a comment (preceded by a blank); move to the next line. */
  const endOfLine = (): void => {
    const from = pos;
    while (pos < n && text.charCodeAt(pos) === SPACE) pos++;
    if (pos >= n) return;
    const c = text.charCodeAt(pos);
    if (c === NL) { pos++; line++; return; }
    if (c === HASH && pos > from) { skipToEol(); return; }
    bail();
  };
  /** An identifier key followed by ':' and a blank or line end; undefined (pos unchanged) if there is none. */
  const tryKey = (): string | undefined => {
    if (!isKeyStart(text.charCodeAt(pos))) return undefined;
    let p = pos + 1;
    while (p < n && isKeyChar(text.charCodeAt(p))) p++;
    if (text.charCodeAt(p) !== COLON) return undefined;
    const after = text.charCodeAt(p + 1);
    if (!(after === SPACE || after === NL || p + 1 >= n)) return undefined;
    const key = text.slice(pos, p);
    if (key === '__proto__' || typeof plain(key) !== 'string') bail();
    pos = p + 1;
    return key;
  };
  const put = (o: Record<string, unknown>, key: string, v: unknown): void => {
    if (Object.hasOwn(o, key)) bail(); // js-yaml: duplicated mapping key
    o[key] = v;
  };

  /** A quoted scalar without escapes, on one line. */
  const quoted = (): string => {
    const q = text.charCodeAt(pos);
    let p = pos + 1;
    for (; p < n; p++) {
      const c = text.charCodeAt(p);
      if (c === q) break;
      if (c === NL || c === 92 /* backslash */) bail();
    }
    if (p >= n) bail();
    const s = text.slice(pos + 1, p);
    pos = p + 1;
    if (q === SQUOTE && text.charCodeAt(pos) === SQUOTE) bail(); // '' escape
    return s;
  };

  /** A plain scalar in block context: to the end of the line or a comment; must be alone on its line. */
  const blockPlain = (): unknown => {
    const c = text.charCodeAt(pos);
    if (isIndicator(c) || (c === DASH && !isKeyChar(text.charCodeAt(pos + 1)))) bail();
    const start = pos;
    let end = pos;
    for (; pos < n; pos++) {
      const d = text.charCodeAt(pos);
      if (d === NL) break;
      if (d === SPACE) {
        if (text.charCodeAt(pos + 1) === HASH) break;
        continue;
      }
      if (d === COLON) {
        const e = text.charCodeAt(pos + 1);
        if (e === SPACE || e === NL || pos + 1 >= n) bail();
      }
      end = pos + 1;
    }
    const s = text.slice(start, end);
    endOfLine();
    return plain(s);
  };

  /** A flow collection ({…} or […]) on one line. */
  const flow = (): unknown => {
    if (++depth > maxDepth) bail();
    const open = text.charCodeAt(pos++);
    const close = open === LBRACE ? RBRACE : RBRACKET;
    const out: Record<string, unknown> | unknown[] = open === LBRACE ? {} : [];
    skipSpaces();
    if (text.charCodeAt(pos) === close) { pos++; depth--; return out; }
    for (;;) {
      if (open === LBRACE) {
        const key = tryKey();
        if (key === undefined || text.charCodeAt(pos) !== SPACE) bail();
        skipSpaces();
        put(out as Record<string, unknown>, key!, flowValue());
      } else {
        (out as unknown[]).push(flowValue());
      }
      skipSpaces();
      const c = text.charCodeAt(pos++);
      if (c === close) break;
      if (c !== COMMA) bail();
      skipSpaces();
      if (text.charCodeAt(pos) === close) bail(); // trailing comma: leave it to js-yaml
    }
    depth--;
    return out;
  };
  const skipSpaces = (): void => { while (text.charCodeAt(pos) === SPACE) pos++; };
  const flowValue = (): unknown => {
    const c = text.charCodeAt(pos);
    if (c === LBRACE || c === LBRACKET) return flow();
    if (c === DQUOTE || c === SQUOTE) return quoted();
    if (isIndicator(c) || (c === DASH && !isKeyChar(text.charCodeAt(pos + 1)))) bail();
    const start = pos;
    let end = pos;
    for (; pos < n; pos++) {
      const d = text.charCodeAt(pos);
      if (d === COMMA || d === RBRACE || d === RBRACKET) break;
      if (d === NL || d === COLON || d === LBRACE || d === LBRACKET || d === HASH || d === DQUOTE || d === SQUOTE) bail();
      if (d !== SPACE) end = pos + 1;
    }
    if (end === start) bail();
    return plain(text.slice(start, end));
  };

  /** `|` or `|-` after a key of a mapping at `indent`: the literal lines that follow. */
  const blockScalar = (indent: number): string => {
    pos++; // '|'
    let strip = false;
    if (text.charCodeAt(pos) === DASH) { strip = true; pos++; }
    const c = text.charCodeAt(pos);
    if (!(c === SPACE || c === NL)) bail();
    endOfLine();
    // The first line fixes the indentation; it must hold text.
    let m = 0;
    while (text.charCodeAt(pos + m) === SPACE) m++;
    if (m <= indent || pos + m >= n || text.charCodeAt(pos + m) === NL) bail();
    const lines: string[] = [];
    let blanks = 0;
    for (;;) {
      if (pos >= n) break;
      let s = 0;
      while (text.charCodeAt(pos + s) === SPACE) s++;
      const c2 = text.charCodeAt(pos + s);
      if (c2 === NL || pos + s >= n) { // a blank line
        if (s > m) bail();
        if (pos + s >= n) { pos += s; break; }
        blanks++;
        pos += s + 1;
        line++;
        continue;
      }
      if (s < m) break;
      const nl = text.indexOf('\n', pos);
      if (nl === -1) bail(); // the last line without a line break: leave chomping to js-yaml
      for (; blanks > 0; blanks--) lines.push('');
      lines.push(text.slice(pos + m, nl));
      pos = nl + 1;
      line++;
    }
    return strip ? lines.join('\n') : `${lines.join('\n')}\n`;
  };

  /** The value after `key:` of a block mapping at `indent` (pos just after the colon). */
  const mappingValue = (indent: number): unknown => {
    skipSpaces();
    const c = text.charCodeAt(pos);
    if (pos >= n || c === NL || c === HASH) {
      if (c === HASH && text.charCodeAt(pos - 1) !== SPACE) bail();
      if (pos < n) skipToEol();
      const save = pos;
      const saveLine = line;
      const m = nextContent();
      if (m > indent) return blockNode(m);
      if (m === indent && isSeqItem()) return sequence(m);
      pos = save;
      line = saveLine;
      return null;
    }
    if (c === PIPE) return blockScalar(indent);
    if (c === LBRACE || c === LBRACKET) { const v = flow(); endOfLine(); return v; }
    if (c === DQUOTE || c === SQUOTE) { const v = quoted(); endOfLine(); return v; }
    return blockPlain();
  };
  const isSeqItem = (): boolean => {
    if (text.charCodeAt(pos) !== DASH) return false;
    const d = text.charCodeAt(pos + 1);
    return d === SPACE || d === NL || pos + 1 >= n;
  };
  /** A block node whose first line starts at pos with indentation `indent`. */
  const blockNode = (indent: number): unknown => (isSeqItem() ? sequence(indent) : mapping(indent));

  /** A block mapping whose first key is at pos, at column `indent`; ends before the first line indented less. */
  const mapping = (indent: number, top = false): Record<string, unknown> => {
    if (++depth > maxDepth) bail();
    const out: Record<string, unknown> = {};
    for (;;) {
      const keyLine = line;
      const key = tryKey();
      if (key === undefined) bail();
      const v = mappingValue(indent);
      put(out, key!, v);
      if (top) {
        keyLines.set(key!, keyLine);
        if (pendingItems) { itemLines.set(v, pendingItems); pendingItems = undefined; }
        else if (Array.isArray(v)) itemLines.set(v, v.map(() => keyLine)); // a one-line flow sequence
      }
      const save = pos;
      const saveLine = line;
      const m = nextContent();
      if (m === indent && !isSeqItem()) continue;
      if (m > indent || m === indent) bail(); // a continuation line, or a stray item
      pos = save;
      line = saveLine;
      break;
    }
    depth--;
    return out;
  };

  let pendingItems: number[] | undefined;
  /** A block sequence whose first '-' is at pos, at column `indent`. */
  const sequence = (indent: number): unknown[] => {
    if (++depth > maxDepth) bail();
    const out: unknown[] = [];
    const lines: number[] = [];
    const record = depth === 2; // the value of a top-level key
    for (;;) {
      lines.push(line);
      pos++; // '-'
      skipSpaces();
      const c = text.charCodeAt(pos);
      if (pos >= n || c === NL || c === HASH) {
        // an item on the following lines (or an empty one): leave it to js-yaml
        bail();
      } else if (c === LBRACE || c === LBRACKET) {
        out.push(flow());
        endOfLine();
      } else if (c === DQUOTE || c === SQUOTE) {
        out.push(quoted());
        endOfLine();
      } else if (isSeqItem()) {
        bail(); // - - nested compact sequence
      } else {
        const col = pos - lineStartOf(pos);
        const save = pos;
        const key = tryKey();
        if (key !== undefined) {
          pos = save;
          out.push(mapping(col));
        } else {
          out.push(blockPlain());
        }
      }
      const save = pos;
      const saveLine = line;
      const m = nextContent();
      if (m === indent && isSeqItem()) continue;
      if (m > indent) bail();
      pos = save;
      line = saveLine;
      break;
    }
    depth--;
    if (record) pendingItems = lines;
    return out;
  };
  const lineStartOf = (p: number): number => text.lastIndexOf('\n', p - 1) + 1;

  try {
    const m = nextContent();
    if (m !== 0) return undefined;
    const value = mapping(0, true);
    if (nextContent() !== -1) return undefined;
    return { value, keyLines, itemLines };
  } catch (e) {
    if (e === BAIL) return undefined;
    throw e;
  }
}
