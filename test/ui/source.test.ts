// The console's sources keep the rules the CSP and the README promise: API data enters the page as text, no inline code, no external URL.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const UI = resolve(import.meta.dirname, '..', '..', 'ui');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

it('never parses strings as HTML or code, stores the token nowhere but session storage, and names no other origin', () => {
  const sources = files(UI).filter((f) => /\.(ts|html|css)$/.test(f));
  expect(sources.length).toBeGreaterThan(5);
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    expect(text, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(/);
    expect(text, file).not.toMatch(/localStorage\.setItem|document\.cookie\s*=/);
    expect(text, file).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    if (file.endsWith('.html')) {
      expect(text, file).not.toMatch(/<script(?![^>]*\bsrc=)|<style|\son[a-z]+=|style=/);
    }
  }
});
