import { describe, expect, it } from 'vitest';
import { parsePatch, splitRows } from './diff';

const PATCH = `diff --git a/calc.py b/calc.py
index 1111111..2222222 100644
--- a/calc.py
+++ b/calc.py
@@ -1,4 +1,5 @@ def top():
 import sys
-def add(a, b):
-    return a - b
+def add(a, b):
+    """Add."""
+    return a + b
 
@@ -10 +11,2 @@
-x = 1
+x = 2
+y = 3
\\ No newline at end of file
`;

describe('parsePatch', () => {
  it('parses hunks with line numbers', () => {
    const hunks = parsePatch(PATCH);
    expect(hunks).toHaveLength(2);
    const [a, b] = hunks;
    expect(a).toMatchObject({ oldStart: 1, oldLines: 4, newStart: 1, newLines: 5, section: 'def top():' });
    expect(a!.lines.map((l) => [l.kind, l.oldNo, l.newNo, l.text])).toEqual([
      ['ctx', 1, 1, 'import sys'],
      ['del', 2, null, 'def add(a, b):'],
      ['del', 3, null, '    return a - b'],
      ['add', null, 2, 'def add(a, b):'],
      ['add', null, 3, '    """Add."""'],
      ['add', null, 4, '    return a + b'],
      ['ctx', 4, 5, ''],
    ]);
    expect(b).toMatchObject({ oldStart: 10, oldLines: 1, newStart: 11, newLines: 2 });
    expect(b!.lines.map((l) => l.kind)).toEqual(['del', 'add', 'add', 'note']);
    expect(b!.lines[2]).toMatchObject({ newNo: 12, text: 'y = 3' });
  });

  it('accepts a bare patch without a file header, and an empty one', () => {
    expect(parsePatch('@@ -0,0 +1 @@\n+hello\n')[0]!.lines).toEqual([
      { kind: 'add', text: 'hello', oldNo: null, newNo: 1 },
    ]);
    expect(parsePatch('')).toEqual([]);
    expect(parsePatch('Binary files a/x and b/x differ')).toEqual([]);
  });
});

describe('splitRows', () => {
  it('pairs deletions with additions and keeps context on both sides', () => {
    const rows = splitRows(parsePatch(PATCH)[0]!.lines);
    expect(rows.map((r) => [r.left?.oldNo ?? null, r.right?.newNo ?? null])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [null, 4],
      [4, 5],
    ]);
  });
});
