// TCP and TLS transports (node:net, node:tls): Node.js only, never reachable from the browser
// entry point (browser.ts).
import * as net from "node:net";
import * as tls from "node:tls";
import { TransportError } from "./errors.js";
import type { Transport, TransportFactory, TransportHandlers } from "./transport.js";

/** TlsOptions make every connection TLS (R2). */
export interface TlsOptions {
  /** PEM CA certificates to trust instead of the system roots (a private CA). */
  ca?: string | Buffer | (string | Buffer)[];
  /** Name to verify (and send as SNI); default the host of the address. */
  servername?: string;
  /** Client certificate and key (PEM), for a load balancer that asks for one. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Lowest TLS version; default "TLSv1.2". */
  minVersion?: tls.SecureVersion;
}

/** splitAddress splits "host:port" (IPv6 as "[::1]:7000"). */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TransportError(`address ${JSON.stringify(address)} is not host:port`);
  }
  return { host: m[1] ?? m[2] ?? "", port };
}

/** SocketTransport adapts a connected node:net or node:tls socket. */
export class SocketTransport implements Transport {
  private handlers: TransportHandlers | undefined;
  private ended: { err: Error | undefined } | undefined;
  private closed = false;
  private writeError: Error | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.pause();
    keepReadingAfterWriteError(socket, (e) => {
      this.writeError ??= e;
    });
    let failure: Error | undefined;
    socket.on("error", (e) => {
      failure ??= e;
    });
    socket.on("close", () => {
      this.finish(failure);
    });
    // A half-close by the gateway (FIN after its last frame) ends the stream: close our side.
    socket.on("end", () => {
      socket.end();
    });
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.socket.on("data", (chunk: Buffer) => {
      if (!this.closed) {
        handlers.data(chunk);
      }
    });
    this.socket.resume();
    if (this.ended) {
      handlers.end(this.ended.err);
    }
  }

  write(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || this.ended || this.socket.destroyed) {
        reject(new TransportError("write on a closed connection"));
        return;
      }
      if (this.writeError) {
        reject(new TransportError(`write: ${this.writeError.message}`, { cause: this.writeError }));
        return;
      }
      this.socket.write(data, (err) => {
        const failed = err ?? this.writeError;
        if (failed) {
          reject(new TransportError(`write: ${failed.message}`, { cause: failed }));
        } else {
          resolve();
        }
      });
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private finish(err: Error | undefined): void {
    if (this.ended) {
      return;
    }
    this.ended = { err: err ? new TransportError(err.message, { cause: err }) : undefined };
    if (this.handlers && !this.closed) {
      this.handlers.end(this.ended.err);
    }
  }
}

type WriteCallback = (err?: Error | null) => void;
interface SocketWrites {
  _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void;
  _writev?(chunks: unknown, cb: WriteCallback): void;
}

/**
 * keepReadingAfterWriteError hands socket's write errors to onError instead of letting them
 * destroy it. Node destroys a socket whose write fails, and with it the bytes the kernel
 * received but Node has not read yet: the gateway's last frame (a fatal ERROR) that a reset
 * overtook. The socket then stays readable until its end (EOF or the reset), as R37 needs; the
 * transport fails that write and every later one itself.
 */
export function keepReadingAfterWriteError(socket: net.Socket, onError: (e: Error) => void): void {
  // _write and _writev are the Writable's implementation hooks (public for implementers).
  const s = socket as unknown as SocketWrites;
  const keep = (cb: WriteCallback): WriteCallback => (err) => {
    if (err) {
      onError(err);
    }
    cb();
  };
  const write = s._write.bind(socket);
  s._write = (chunk, encoding, cb) => {
    write(chunk, encoding, keep(cb));
  };
  const writev = s._writev?.bind(socket);
  if (writev) {
    s._writev = (chunks, cb) => {
      writev(chunks, keep(cb));
    };
  }
}

/** tlsConnectOptions are tls.connect's options for o, to a server at host. */
export function tlsConnectOptions(host: string, o: TlsOptions): tls.ConnectionOptions {
  const servername = o.servername ?? host;
  return {
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    minVersion: o.minVersion ?? "TLSv1.2",
    // SNI must not be an IP address; verification still checks the name given.
    servername: net.isIP(servername) ? "" : servername,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(servername, cert),
  };
}

/** tcpTransport dials plaintext TCP, or TLS when tlsOptions is set. */
export function tcpTransport(tlsOptions?: TlsOptions): TransportFactory {
  return (address, signal) =>
    new Promise<Transport>((resolve, reject) => {
      const { host, port } = splitAddress(address);
      let socket: net.Socket;
      const ready = tlsOptions ? "secureConnect" : "connect";
      if (tlsOptions) {
        socket = tls.connect({ host, port, ...tlsConnectOptions(host, tlsOptions) });
      } else {
        socket = net.connect({ host, port });
      }
      const fail = (e: Error) => {
        cleanup();
        socket.destroy();
        reject(new TransportError(`dial ${address}: ${e.message}`, { cause: e }));
      };
      const onAbort = () => {
        fail(new Error("timed out"));
      };
      const onReady = () => {
        cleanup();
        resolve(new SocketTransport(socket));
      };
      const cleanup = () => {
        socket.off("error", fail);
        socket.off(ready, onReady);
        signal.removeEventListener("abort", onAbort);
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      socket.once("error", fail);
      socket.once(ready, onReady);
      signal.addEventListener("abort", onAbort, { once: true });
    });
}
