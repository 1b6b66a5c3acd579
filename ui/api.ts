// The console's API access: the same REST API and bearer-token auth as the CLI (token from session storage only), errors with their code, and SSE read with fetch.

const TOKEN_KEY = 'laneway.token';

/** The token the user entered this session; never in a URL, a cookie or local storage. */
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value === null || value === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

/** An API answer that was not 2xx, with the `{"error":{code,message}}` body the control plane sends. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t === null ? extra : { ...extra, authorization: `Bearer ${t}` };
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code !== undefined) return new ApiError(res.status, body.error.code, body.error.message ?? '');
  } catch {
    // not our JSON (a proxy's page): the status says enough
  }
  return new ApiError(res.status, `HTTP_${res.status}`, text.slice(0, 200) || res.statusText);
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `the control plane cannot be reached (${(err as Error).message})`);
  }
  if (!res.ok) throw await failure(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);

export interface StreamEvent {
  readonly event: string;
  readonly data: string;
  readonly id: string | null;
}

/**
 * Reads a Server-Sent Events stream with fetch, because EventSource cannot send an Authorization
 * header (and a token in the URL would end up in logs). Parses the WHATWG event-stream format
 * (lines, `event:`/`data:`/`id:` fields, blank line ends an event); resolves when the stream ends,
 * rejects with ApiError when it is refused.
 */
export async function stream(path: string, onEvent: (event: StreamEvent) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal, cache: 'no-store' });
  if (!res.ok || res.body === null) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl: number;
    while ((nl = buffer.search(/\r\n|\r|\n/)) !== -1) {
      if (nl === buffer.length - 1 && buffer[nl] === '\r') break; // a CR at the end may be half of a CRLF: wait for more
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id });
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let val = colon === -1 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'event') event = val;
      else if (field === 'data') data.push(val);
      else if (field === 'id') id = val;
    }
  }
}
