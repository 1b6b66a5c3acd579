// The bench's gRPC service definition: one unary method, messages framed as JSON so no protobuf toolchain is needed.
import type * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()),
};

export const ECHO_SERVICE = {
  unary: {
    path: '/laneway.bench.Echo/Unary',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} as unknown as grpc.ServiceDefinition;
