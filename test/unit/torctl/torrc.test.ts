import { describe, expect, it } from 'vitest';
import { renderTorrc, torrcEntries, torrcNeedsQuotes, torrcQuote } from '../../../src/core/torrc.js';

const bad = expect.objectContaining({ code: 'TB_ERR_TORRC_INVALID' });

describe('renderTorrc', () => {
  it('renders plain values bare and quotes values tor would otherwise split, comment or unescape', () => {
    // Checked against tor 0.4.9.11: `tor --dump-config short` on this output printed
    // ContactInfo "a \"b\" \\c #d\te  \303\251 " and DataDirectory /tmp/x/dir with space.
    expect(
      renderTorrc([
        ['SocksPort', '0'],
        ['DataDirectory', '/tmp/x/dir with space'],
        ['ContactInfo', 'a "b" \\c #d\te  é '],
        ['HiddenServicePort', '80 127.0.0.1:8080'],
        ['Nickname', ''],
      ]),
    ).toBe(
      'SocksPort 0\n' +
        'DataDirectory "/tmp/x/dir with space"\n' +
        'ContactInfo "a \\"b\\" \\\\c #d\\te  é "\n' +
        'HiddenServicePort "80 127.0.0.1:8080"\n' +
        'Nickname ""\n',
    );
  });

  it('escapes other control characters as \\xHH', () => {
    expect(torrcQuote('a\x01\x7f')).toBe('"a\\x01\\x7f"');
    expect(torrcNeedsQuotes('abc')).toBe(false);
    expect(torrcNeedsQuotes('a#')).toBe(true);
  });

  it('rejects CR/LF/NUL in values (line injection) and bad keywords', () => {
    for (const v of ['a\nControlPort 9051', 'a\rb', 'a\0b']) expect(() => renderTorrc([['ContactInfo', v]])).toThrow(bad);
    for (const k of ['', 'Bad Key', '1abc', 'a\nb', 'Key#']) expect(() => renderTorrc([[k, 'v']])).toThrow(bad);
    expect(() => renderTorrc([['ContactInfo', 'x'.repeat(70_000)]])).toThrow(bad);
  });

  it('torrcEntries expands arrays, booleans and numbers and skips undefined', () => {
    expect(torrcEntries({ SocksPort: 0, DisableNetwork: true, Log: ['notice stdout', 'info file /x'], Nickname: undefined })).toEqual([
      ['SocksPort', '0'],
      ['DisableNetwork', '1'],
      ['Log', 'notice stdout'],
      ['Log', 'info file /x'],
    ]);
  });
});
