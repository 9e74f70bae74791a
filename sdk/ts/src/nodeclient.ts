// The Client of the Node.js entry point (index.ts): besides ws:// and wss:// URLs it dials
// host:port over TCP, or TLS with the tls option (node:net, node:tls via tcp.ts).
import { Client as BaseClient, connectWith } from "./client.js";
import type { ClientListeners, ClientOptions as BaseClientOptions } from "./client.js";
import { tcpTransport } from "./tcp.js";
import type { TlsOptions } from "./tcp.js";
import type { TransportFactory } from "./transport.js";
import { isWebSocketAddress, webSocketTransport } from "./websocket.js";

export interface ClientOptions extends BaseClientOptions {
  /** TLS for every TCP connection (R2). For wss:// the WebSocket constructor verifies the certificate. */
  tls?: TlsOptions;
}

/** nodeTransport: WebSocket for a ws:// or wss:// address, else TCP (TLS with tls). */
function nodeTransport(o: ClientOptions): TransportFactory {
  if (!isWebSocketAddress(o.address)) {
    return tcpTransport(o.tls);
  }
  if (o.tls) {
    // Ignoring it would trust what the app meant to restrict.
    throw new TypeError("tcpgateway: tls applies to host:port addresses; for wss:// give webSocket: { WebSocket: wsPackage(WebSocket, { tls }) } (the ws package's WebSocket)");
  }
  return webSocketTransport(o.webSocket);
}

/** Client keeps one session with a gateway alive across connections (see client.ts). */
export class Client extends BaseClient {
  constructor(options: ClientOptions) {
    super({ ...options, transport: options.transport ?? nodeTransport(options) });
  }
}

/** connect creates a client with listeners registered before its first handshake and connects it. */
export function connect(options: ClientOptions & { on?: ClientListeners }): Promise<Client> {
  return connectWith(new Client(options), options.on);
}
