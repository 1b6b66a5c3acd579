// Test helper: a gRPC Echo service (JSON messages, real gRPC framing, trailers and streaming) and a server for it.
import * as grpc from '@grpc/grpc-js';

// Messages are JSON: the test needs real gRPC framing, trailers and streaming, not protobuf.
const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString()),
};
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/laneway.test.Echo/${path}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
export const service = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} as unknown as grpc.ServiceDefinition;
/** A client of the Echo service: its four methods, as grpc-js's generic constructor makes them (untyped). */
export type EchoStub = grpc.Client & {
  unary(...args: any[]): any;
  serverStream(...args: any[]): any;
  clientStream(...args: any[]): any;
  bidi(...args: any[]): any;
};
export const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');

export type Msg = { n?: number; text?: string; fail?: boolean; big?: number; slow?: boolean };

/** An Echo server named `name` on 127.0.0.1 (a free port); cancellations are pushed to `events` as `<name>:cancelled`. */
export function startGrpcServer(name: string, events: string[]): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(service, {
    unary(call: grpc.ServerUnaryCall<Msg, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const req = call.request;
      if (req.fail) {
        const md = new grpc.Metadata();
        md.set('x-detail', `${name}-detail`);
        cb({ code: grpc.status.NOT_FOUND, details: `not found at ${name}`, metadata: md });
        return;
      }
      const deadline = call.getDeadline();
      if (req.slow) {
        setTimeout(() => cb(null, { from: name }), 2000);
        return;
      }
      cb(null, { from: name, baggage: call.metadata.get('baggage')[0] ?? null, text: req.big ? 'x'.repeat(req.big) : req.text, hasDeadline: deadline !== Infinity });
    },
    serverStream(call: grpc.ServerWritableStream<Msg, unknown>) {
      call.on('cancelled', () => events.push(`${name}:cancelled`));
      const n = call.request.n ?? 3;
      let i = 0;
      const timer = setInterval(() => {
        if (call.cancelled) return clearInterval(timer);
        call.write({ from: name, i: i++ });
        if (i === n) {
          clearInterval(timer);
          call.end();
        }
      }, n > 100 ? 20 : 1);
    },
    clientStream(call: grpc.ServerReadableStream<Msg, unknown>, cb: grpc.sendUnaryData<unknown>) {
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n ?? 0));
      call.on('end', () => cb(null, { from: name, sum }));
    },
    bidi(call: grpc.ServerDuplexStream<Msg, unknown>) {
      call.on('data', (m: Msg) => call.write({ from: name, text: m.text }));
      call.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port }))),
  );
}
