// Scale bench helper process: holds N watch streams (spread over several control-plane replicas) and reports when each got an event.
// usage: node watchers.js <url,url,...> <count> <workload>; stdin "wait <sandbox>" lines; stdout "ready <n>" and {"sandbox","times":[epoch ms…]} lines.
import { request } from 'node:http';
import { createInterface } from 'node:readline';

const [urlList, countText, workload] = process.argv.slice(2) as [string, string, string];
const urls = urlList.split(',');
const count = Number(countText);

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();

class Stream {
  buffer = '';
  snapshot = false;
  receivedAt = 0;
}

const streams: Stream[] = [];
let snapshots = 0;
let waitingFor = '';
let pending = 0;

function onData(s: Stream, chunk: string): void {
  s.buffer += chunk;
  let end: number;
  while ((end = s.buffer.indexOf('\n\n')) !== -1) {
    const frame = s.buffer.slice(0, end);
    s.buffer = s.buffer.slice(end + 2);
    if (!s.snapshot && frame.includes('event: snapshot')) {
      s.snapshot = true;
      if (++snapshots === count) process.stdout.write(`ready ${count}\n`);
    } else if (waitingFor !== '' && s.receivedAt === 0 && frame.includes('event: upsert') && frame.includes(waitingFor)) {
      s.receivedAt = now();
      if (--pending === 0) {
        process.stdout.write(`${JSON.stringify({ sandbox: waitingFor.slice(11, -1), times: streams.map((x) => x.receivedAt) })}\n`);
        waitingFor = '';
      }
    }
  }
}

for (let i = 0; i < count; i++) {
  const s = new Stream();
  streams.push(s);
  // One TCP connection per stream (agent: false), as one sidecar each.
  const req = request(new URL(`/v1/workloads/${workload}/routes/watch`, urls[i % urls.length]), { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) {
      process.stderr.write(`watch answered ${res.statusCode}\n`);
      process.exit(1);
    }
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => onData(s, chunk));
  });
  req.on('error', (err) => {
    process.stderr.write(`watch failed: ${err.message}\n`);
    process.exit(1);
  });
  req.end();
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.startsWith('wait ')) return;
  for (const s of streams) s.receivedAt = 0;
  pending = count;
  waitingFor = `"sandbox":"${line.slice(5)}"`;
});
process.stdin.on('end', () => process.exit(0));
