// The demo's gRPC service: one bidi-streaming method, defined without code generation.
export const CHAT_PATH = '/demo.Echo/Chat';

const raw = (b) => b;

export const echoService = {
  Chat: {
    path: CHAT_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};
