// What `laneway version` prints: the package's version, the commit when running from a git checkout, and Node's.
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url);

/** The package version (package.json next to dist/). */
export function lanewayVersion(): string {
  return (JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string }).version;
}

/** The checkout's commit (12 hex digits), or undefined outside a git checkout (an installed package). */
export function lanewayCommit(): string | undefined {
  try {
    const head = readFileSync(new URL('.git/HEAD', ROOT), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head.slice(0, 12);
    const ref = /^ref: (refs\/[\w./-]+)$/.exec(head)?.[1];
    if (ref === undefined) return undefined;
    let sha: string | undefined;
    try {
      sha = readFileSync(new URL(`.git/${ref}`, ROOT), 'utf8').trim();
    } catch {
      // A packed ref: `<sha> <ref>` lines.
      sha = readFileSync(new URL('.git/packed-refs', ROOT), 'utf8').split('\n').find((line) => line.endsWith(` ${ref}`))?.split(' ')[0];
    }
    return sha !== undefined && /^[0-9a-f]{40}$/.test(sha) ? sha.slice(0, 12) : undefined;
  } catch {
    return undefined;
  }
}

/** `laneway 0.1.0 (commit 1a2b3c4d5e6f, node v20.20.2)` */
export function versionLine(): string {
  const commit = lanewayCommit();
  return `laneway ${lanewayVersion()} (${commit === undefined ? '' : `commit ${commit}, `}node ${process.version})`;
}
