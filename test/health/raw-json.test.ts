// The integrity gate's JSON reader: strict JSON in, numbers kept as sent.
import t from 'tap';
import { compareNumberText, isSameRawJson, pickRawField, readRawJson, renderRawJson } from '../../src/health/raw-json.js';

const read = (text: string) => {
  const r = readRawJson(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

t.test('documents JSON.parse accepts read back with numbers as their text', async (t) => {
  const cases: Array<[string, string]> = [
    ['{}', '{}'],
    ['[]', '[]'],
    [' [ ] ', '[]'],
    ['{"a": [1, 2.50, -0, 1E+3], "b": {"c": null, "d": true, "e": false}}', '{"a":[1,2.50,-0,1E+3],"b":{"c":null,"d":true,"e":false}}'],
    ['"top"', 'top'],
    ['{"s": "tab\\there \\"q\\" \\\\ \\/ \\u0041"}', '{"s":"tab\\there \\"q\\" \\\\ / A"}'],
    ['123456789012345678901234567890', '123456789012345678901234567890'],
  ];
  for (const [text, rendered] of cases) {
    t.doesNotThrow(() => JSON.parse(text), `JSON.parse accepts ${text}`);
    t.equal(renderRawJson(read(text)), rendered, text);
  }
});

t.test('anything JSON.parse refuses is refused, with where', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /unexpected end at offset 0/],
    ['{', /expected a key at offset 1/],
    ['{"a" 1}', /expected ':' at offset 5/],
    ['{"a": 1 "b": 2}', /expected ',' or '}'/],
    ['[1 2]', /expected ',' or '\]'/],
    ['[1,]', /unexpected character at offset 3/],
    ['{a: 1}', /expected a key/],
    ['"unterminated', /bad string at offset 0/],
    ['"bad \\x escape"', /bad string/],
    ['"raw\ttab"', /bad string/],
    ['01', /unexpected text after the document at offset 1/],
    ['+1', /unexpected character/],
    ['1.', /unexpected text after the document/],
    ['.5', /unexpected character/],
    ['NaN', /unexpected character/],
    ['tru', /unexpected character/],
    ['{} {}', /unexpected text after the document at offset 3/],
  ];
  for (const [text, error] of cases) {
    t.throws(() => JSON.parse(text), `JSON.parse refuses ${JSON.stringify(text)}`);
    const r = readRawJson(text);
    t.equal(r.ok, false, JSON.stringify(text));
    if (!r.ok) t.match(r.error, error, JSON.stringify(text));
  }
});

t.test('a long string reads in one go', async (t) => {
  const long = 'x'.repeat(1024 * 1024);
  t.equal(renderRawJson(read(JSON.stringify({ s: long }))).length, long.length + 8);
});

t.test('fields by dotted path, array items by index only', async (t) => {
  const doc = read('{"a": {"b": [10, {"c": 7}]}, "0": "zero"}');
  t.equal(renderRawJson(pickRawField(doc, 'a.b.1.c')!), '7');
  t.equal(renderRawJson(pickRawField(doc, '0')!), 'zero', 'a digit key of an object');
  t.equal(pickRawField(doc, 'a.b.01'), undefined, 'not a canonical index');
  t.equal(pickRawField(doc, 'a.b.5'), undefined, 'past the end');
  t.equal(pickRawField(doc, 'a.b.length'), undefined, 'no array properties');
  t.equal(pickRawField(doc, 'a.x.y'), undefined, 'through a missing key');
  t.equal(pickRawField(doc, 'a.b.0.c'), undefined, 'through a number');
});

t.test('sameness: literal numbers, decoded strings, keys in any order', async (t) => {
  const same = (a: string, b: string) => isSameRawJson(read(a), read(b));
  t.ok(same('{"a": 1, "b": [1, "x"]}', '{"b":[1,"x"],"a":1}'));
  t.notOk(same('1', '1.0'));
  t.notOk(same('1', '"1"'));
  t.notOk(same('true', 'false'));
  t.notOk(same('null', 'false'));
  t.ok(same('"\\u00e9"', '"é"'));
  t.notOk(same('[1]', '[1, 1]'));
  t.notOk(same('[1]', '{"0": 1}'));
  t.notOk(same('{"a": 1}', '{"b": 1}'));
  t.notOk(same('{"a": 1}', '{"a": 1, "b": 2}'));
  t.notOk(same('{"a": 1}', '[1]'));
});

t.test('numbers compared with a bound exactly, in decimal', async (t) => {
  const cases: Array<[string, number, number]> = [
    ['5', 5, 0], ['5.0', 5, 0], ['0.5e1', 5, 0], ['50e-1', 5, 0],
    ['4.999999999999999999', 5, -1], ['5.000000000000000001', 5, 1],
    ['-1', 0, -1], ['0.1', 0.1, 0], ['0.10000000000000001', 0.1, 1],
    ['1e-7', 1e-7, 0], ['123', 1e21, -1], ['-0', 0, 0],
  ];
  for (const [text, max, want] of cases) t.equal(compareNumberText(text, max), want, `${text} vs ${max}`);
  t.throws(() => compareNumberText('abc', 1), /not a decimal number/);
});
