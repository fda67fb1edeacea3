// Parse a unified diff (one file's patch, with or without its `diff --git` / `---` / `+++`
// header) into hunks of numbered lines, and pair them side by side for the split view.

export type LineKind = 'add' | 'del' | 'ctx' | 'note';

export interface DiffLine {
  kind: LineKind;
  text: string;
  /** Line number in the old file (del, ctx). */
  oldNo: number | null;
  /** Line number in the new file (add, ctx). */
  newNo: number | null;
}

export interface Hunk {
  header: string;
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** The text after the second `@@` (often the enclosing function). */
  section: string;
  lines: DiffLine[];
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$/;

export function parsePatch(patch: string): Hunk[] {
  const hunks: Hunk[] = [];
  let hunk: Hunk | null = null;
  let oldNo = 0;
  let newNo = 0;
  const lines = patch.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const m = HUNK.exec(line);
    if (m) {
      hunk = {
        header: line,
        oldStart: Number(m[1]),
        oldLines: m[2] === undefined ? 1 : Number(m[2]),
        newStart: Number(m[3]),
        newLines: m[4] === undefined ? 1 : Number(m[4]),
        section: m[5] ?? '',
        lines: [],
      };
      hunks.push(hunk);
      oldNo = hunk.oldStart;
      newNo = hunk.newStart;
      continue;
    }
    if (hunk === null) continue; // file header (diff --git, index, ---, +++, mode lines)
    const mark = line[0];
    const text = line.slice(1);
    if (mark === '+') hunk.lines.push({ kind: 'add', text, oldNo: null, newNo: newNo++ });
    else if (mark === '-') hunk.lines.push({ kind: 'del', text, oldNo: oldNo++, newNo: null });
    else if (mark === ' ' || line === '')
      hunk.lines.push({ kind: 'ctx', text, oldNo: oldNo++, newNo: newNo++ });
    else if (mark === '\\') hunk.lines.push({ kind: 'note', text: line, oldNo: null, newNo: null });
    else hunk = null; // something else (the next file's header): stop this hunk
  }
  return hunks;
}

export interface SplitRow {
  left: DiffLine | null;
  right: DiffLine | null;
}

/**
 * Side-by-side rows: context on both sides; a run of deletions followed by a run of additions
 * is paired line by line (the longer run leaves blanks on the other side).
 */
export function splitRows(lines: readonly DiffLine[]): SplitRow[] {
  const rows: SplitRow[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.kind === 'ctx' || line.kind === 'note') {
      rows.push({ left: line, right: line });
      i++;
      continue;
    }
    const dels: DiffLine[] = [];
    const adds: DiffLine[] = [];
    while (i < lines.length && lines[i]!.kind === 'del') dels.push(lines[i++]!);
    while (i < lines.length && lines[i]!.kind === 'add') adds.push(lines[i++]!);
    const n = Math.max(dels.length, adds.length);
    for (let k = 0; k < n; k++) rows.push({ left: dels[k] ?? null, right: adds[k] ?? null });
  }
  return rows;
}
