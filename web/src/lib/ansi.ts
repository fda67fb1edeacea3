// ANSI SGR escape sequences → HTML spans. Text is HTML-escaped; only our own <span> tags are
// emitted. Colours use classes (themeable via CSS variables) for the 16 standard colours and
// inline styles for 256-colour and truecolour. Other escape sequences (cursor moves, erase,
// OSC titles/links) are dropped. A carriage return overwrites the line, like a terminal would.

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

interface Style {
  fg: string | null; // class suffix "0".."15" or "#rrggbb"
  bg: string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
}

const plain = (): Style => ({
  fg: null,
  bg: null,
  bold: false,
  dim: false,
  italic: false,
  underline: false,
  inverse: false,
});

function color256(n: number): string {
  if (n < 16) return String(n);
  if (n < 232) {
    const i = n - 16;
    const steps = [0, 95, 135, 175, 215, 255];
    const r = steps[Math.floor(i / 36) % 6]!;
    const g = steps[Math.floor(i / 6) % 6]!;
    const b = steps[i % 6]!;
    return hex(r, g, b);
  }
  const v = 8 + (n - 232) * 10;
  return hex(v, v, v);
}

function hex(r: number, g: number, b: number): string {
  const h = (x: number) => Math.max(0, Math.min(255, x | 0)).toString(16).padStart(2, '0');
  return `#${h(r)}${h(g)}${h(b)}`;
}

function applySgr(style: Style, params: number[]): Style {
  const s = { ...style };
  if (params.length === 0) params = [0];
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    if (p === 0) Object.assign(s, plain());
    else if (p === 1) s.bold = true;
    else if (p === 2) s.dim = true;
    else if (p === 3) s.italic = true;
    else if (p === 4) s.underline = true;
    else if (p === 7) s.inverse = true;
    else if (p === 22) s.bold = s.dim = false;
    else if (p === 23) s.italic = false;
    else if (p === 24) s.underline = false;
    else if (p === 27) s.inverse = false;
    else if (p >= 30 && p <= 37) s.fg = String(p - 30);
    else if (p >= 90 && p <= 97) s.fg = String(p - 90 + 8);
    else if (p === 39) s.fg = null;
    else if (p >= 40 && p <= 47) s.bg = String(p - 40);
    else if (p >= 100 && p <= 107) s.bg = String(p - 100 + 8);
    else if (p === 49) s.bg = null;
    else if (p === 38 || p === 48) {
      let value: string | null = null;
      if (params[i + 1] === 5 && params[i + 2] !== undefined) {
        value = color256(params[i + 2]!);
        i += 2;
      } else if (params[i + 1] === 2 && params[i + 4] !== undefined) {
        value = hex(params[i + 2]!, params[i + 3]!, params[i + 4]!);
        i += 4;
      } else {
        break; // malformed: ignore the rest
      }
      if (p === 38) s.fg = value;
      else s.bg = value;
    }
  }
  return s;
}

function open(style: Style): string {
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) [fg, bg] = [bg ?? 'inv-fg', fg ?? 'inv-bg'];
  const classes: string[] = [];
  const css: string[] = [];
  if (fg) {
    if (fg.startsWith('#')) css.push(`color:${fg}`);
    else classes.push(`ansi-fg-${fg}`);
  }
  if (bg) {
    if (bg.startsWith('#')) css.push(`background-color:${bg}`);
    else classes.push(`ansi-bg-${bg}`);
  }
  if (style.bold) classes.push('ansi-bold');
  if (style.dim) classes.push('ansi-dim');
  if (style.italic) classes.push('ansi-italic');
  if (style.underline) classes.push('ansi-underline');
  if (!classes.length && !css.length) return '';
  return (
    '<span' +
    (classes.length ? ` class="${classes.join(' ')}"` : '') +
    (css.length ? ` style="${css.join(';')}"` : '') +
    '>'
  );
}

/** Apply carriage returns: on each line, keep what was written after the last `\r`. */
export function applyCarriageReturns(text: string): string {
  if (!text.includes('\r')) return text;
  return text
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((line) => {
      const i = line.lastIndexOf('\r', line.length - 1);
      if (i < 0) return line;
      const after = line.slice(i + 1);
      return after.length ? after : line.slice(0, i).split('\r').pop() ?? '';
    })
    .join('\n');
}

// CSI (ESC [ … final byte), OSC (ESC ] … BEL or ESC \), and lone two-byte escapes.
// eslint-disable-next-line no-control-regex
const SEQUENCE = /\x1b\[([0-?]*)([ -/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]/g;

/** Convert terminal output with ANSI colours to safe HTML. */
export function ansiToHtml(input: string): string {
  const text = applyCarriageReturns(input);
  let out = '';
  let style = plain();
  let openTag = '';
  let last = 0;
  SEQUENCE.lastIndex = 0;
  for (let m = SEQUENCE.exec(text); m !== null; m = SEQUENCE.exec(text)) {
    out += escapeHtml(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[3] !== 'm' || m[2]) continue; // not SGR: drop
    const params = m[1]
      ? m[1]
          .split(/[;:]/)
          .map((x) => (x === '' ? 0 : Number.parseInt(x, 10)))
          .filter((x) => Number.isFinite(x))
      : [];
    style = applySgr(style, params);
    const next = open(style);
    if (openTag) out += '</span>';
    out += next;
    openTag = next;
  }
  out += escapeHtml(text.slice(last));
  if (openTag) out += '</span>';
  return out;
}

/** The text without any escape sequences (for copying, searching and measuring). */
export function stripAnsi(text: string): string {
  return text.replace(SEQUENCE, '');
}
