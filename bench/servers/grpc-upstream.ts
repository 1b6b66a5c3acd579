// A cheap gRPC upstream for the bench: one unary method answering its own name (JSON-framed, no protobuf).
// usage: node dist/bench/servers/grpc-upstream.js <name>   → prints "listening <port>"
import * as grpc from '@grpc/grpc-js';
import { ECHO_SERVICE } from '../lib/grpc-echo.js';

const name = process.argv[2] ?? 'grpc-upstream';
const reply = { from: name };
const server = new grpc.Server();
server.addService(ECHO_SERVICE, {
  unary(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
    callback(null, reply);
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${port}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
