import { describe, expect, it } from 'vitest';
import { ansiToHtml, applyCarriageReturns, escapeHtml, stripAnsi } from './ansi';

describe('ansiToHtml', () => {
  it('escapes HTML in plain text', () => {
    expect(ansiToHtml('<script>alert("x")</script> & \'y\'')).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;',
    );
  });

  it('escapes HTML inside coloured text', () => {
    const html = ansiToHtml('\x1b[31m<img src=x onerror=alert(1)>\x1b[0m');
    expect(html).toBe('<span class="ansi-fg-1">&lt;img src=x onerror=alert(1)&gt;</span>');
    expect(html).not.toContain('<img');
  });

  it('maps standard, bright, 256 and truecolour', () => {
    expect(ansiToHtml('\x1b[1;32mok\x1b[0m done')).toBe(
      '<span class="ansi-fg-2 ansi-bold">ok</span> done',
    );
    expect(ansiToHtml('\x1b[91mE\x1b[39m')).toBe('<span class="ansi-fg-9">E</span>');
    expect(ansiToHtml('\x1b[38;5;196mr\x1b[m')).toBe('<span style="color:#ff0000">r</span>');
    expect(ansiToHtml('\x1b[48;2;1;2;3mb\x1b[0m')).toBe(
      '<span style="background-color:#010203">b</span>',
    );
  });

  it('keeps styles across sequences until reset', () => {
    expect(ansiToHtml('\x1b[1mA\x1b[34mB\x1b[22mC\x1b[0mD')).toBe(
      '<span class="ansi-bold">A</span><span class="ansi-fg-4 ansi-bold">B</span>' +
        '<span class="ansi-fg-4">C</span>D',
    );
  });

  it('drops non-colour sequences and closes an unterminated span', () => {
    expect(ansiToHtml('a\x1b[2Kb\x1b[1Gc\x1b]0;title\x07d')).toBe('abcd');
    expect(ansiToHtml('\x1b[33mwarn')).toBe('<span class="ansi-fg-3">warn</span>');
  });

  it('applies carriage returns like a terminal', () => {
    expect(applyCarriageReturns('10%\r50%\r100%\nnext\r\n')).toBe('100%\nnext\n');
    expect(ansiToHtml('x\ry')).toBe('y');
  });

  it('strips sequences', () => {
    expect(stripAnsi('\x1b[31mred\x1b[0m')).toBe('red');
    expect(escapeHtml('"')).toBe('&quot;');
  });
});
