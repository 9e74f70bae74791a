// The conformance driver of the TypeScript SDK (test/conformance/DRIVER.md): one JSON command
// per line on stdin, one JSON event per line on stdout. A thin adapter: every state change,
// push and error it reports comes from the SDK's events and return values.
//
//   TCPGW_CONFORMANCE_DRIVER='node sdk/ts/dist/src/driver.js' go test -count=1 ./test/conformance/
import { createInterface } from "node:readline";
import WebSocket from "ws";
import type { ReceivedPush, ResumeState } from "./client.js";
import { Client } from "./nodeclient.js";
import { wsPackage } from "./nodews.js";
import { FrameError } from "./codec.js";
import { AlreadyAnsweredError, ClosedError, ConnectionLostError, GoAwayError, NotRequestedError, ServerError, TokenSourceError } from "./errors.js";
import { ErrorCode, GoAway_Reason, ResumeResult_Status } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { HandshakeAck, Position } from "./gen/tcpgateway/v1/protocol_pb.js";
import { isWebSocketAddress } from "./websocket.js";
import type { WebSocketConstructor } from "./websocket.js";

type Json = Record<string, unknown>;
interface WirePosition {
  partition: number;
  offset: number;
}
interface Command {
  id?: number;
  op?: string;
  client?: string;
  address?: string;
  token?: string;
  refreshable?: boolean;
  session_id?: string;
  device_id?: string;
  client_version?: string;
  tls?: { ca_pem?: string; server_name?: string };
  reconnect?: { initial_ms?: number; max_ms?: number; lost_spread_ms?: number };
  no_reconnect?: boolean;
  dedup_window?: number;
  max_frame_bytes?: number;
  resume?: { session_id?: string; positions?: WirePosition[]; resume_token?: string };
  service?: string;
  method?: string;
  payload?: string;
  headers?: Record<string, string>;
  timeout_ms?: number;
  deadline_ms?: number;
  message_id?: string;
}

class DriverError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** emit writes one event line; bigints (offsets, times) become numbers. */
function emit(e: Json): void {
  process.stdout.write(JSON.stringify(e, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v)) + "\n");
}

function codeName(c: ErrorCode): string {
  // A code newer than this SDK has no name: its number is written instead.
  return c in ErrorCode ? ErrorCode[c] : String(c);
}
const positions = (ps: Position[]): WirePosition[] => ps.map((p) => ({ partition: p.partition, offset: Number(p.offset) }));
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

/** failure classifies an SDK error into the protocol's kinds. */
function failure(err: unknown): Json {
  if (err instanceof DriverError) return { kind: err.kind, message: err.message };
  if (err instanceof ServerError) return { kind: "server_error", code: codeName(err.code), message: err.reason };
  if (err instanceof GoAwayError) {
    return { kind: "goaway", reason: GoAway_Reason[err.goaway.reason], reconnect_delay_ms: err.goaway.reconnectDelayMs, message: err.message };
  }
  if (err instanceof FrameError && err.code === ErrorCode.FRAME_TOO_LARGE) return { kind: "frame_too_large", message: err.message };
  if (err instanceof NotRequestedError || err instanceof AlreadyAnsweredError) return { kind: err.kind, message: err.message };
  if (err instanceof ConnectionLostError) return { kind: "connection_lost", message: err.message };
  if (err instanceof ClosedError) return { kind: "closed", message: err.message };
  if (err instanceof TokenSourceError) return { kind: "token_source", message: err.message };
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return { kind: "timeout", message: err.message };
  return { kind: "transport", message: err instanceof Error ? err.message : String(err) };
}

function ackOf(a: HandshakeAck): Json {
  const out: Json = {
    protocol_version: a.protocolVersion,
    session_id: a.sessionId,
    user_id: a.userId,
    server_id: a.serverId,
    heartbeat_interval_ms: a.heartbeatIntervalMs,
    idle_timeout_ms: a.idleTimeoutMs,
    max_frame_bytes: a.maxFrameBytes,
    token_expires_at_ms: a.tokenExpiresAtMs,
    positions: positions(a.positions),
  };
  if (a.resume) {
    out.resume = {
      status: ResumeResult_Status[a.resume.status],
      not_recovered: positions(a.resume.notRecovered),
      rejected: positions(a.resume.rejected),
    };
  }
  return out;
}

function pushOf(p: ReceivedPush): Json {
  const x = p.push;
  return {
    message_id: x.messageId,
    payload: b64(x.payload),
    position: x.position ? { partition: x.position.partition, offset: x.position.offset } : undefined,
    ack_required: x.ackRequired,
    reply_expected: x.replyExpected,
    expires_at_ms: x.expiresAtMs,
    created_at_ms: x.createdAtMs,
    correlation_id: x.correlationId,
  };
}

interface SdkClient {
  client: Client;
  token: string;
  fetches: number;
  pushes: Map<string, ReceivedPush>;
  live: boolean; // connect succeeded: its stop is reported
  pendingStop: Error | undefined; // a stop seen before the connect result was written
}

const clients = new Map<string, SdkClient>();

/** withDeadline rejects with a timeout failure when ms pass first. */
async function withDeadline<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => {
      reject(new DriverError("timeout", `no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** webSocketClass is the ws package's WebSocket (Node.js 20 has no stable global one), with tls's CA and name. */
function webSocketClass(t: Command["tls"], maxFrameBytes: number): WebSocketConstructor {
  const tls = { ...(t?.ca_pem ? { ca: t.ca_pem } : {}), ...(t?.server_name ? { servername: t.server_name } : {}) };
  return wsPackage(WebSocket, { tls, maxFrameBytes });
}

async function connect(cmd: Command, name: string, deadline: number): Promise<Json> {
  if (clients.has(name)) throw new DriverError("bad_command", `client ${name} exists`);
  const sc: SdkClient = { token: cmd.token ?? "", fetches: 0, pushes: new Map(), live: false, pendingStop: undefined, client: undefined as unknown as Client };
  let resume: ResumeState | undefined;
  if (cmd.resume) {
    resume = {
      sessionId: cmd.resume.session_id ?? "",
      positions: (cmd.resume.positions ?? []).map((p) => ({ partition: p.partition, offset: BigInt(p.offset) })),
    };
    if (cmd.resume.resume_token) resume.resumeToken = cmd.resume.resume_token;
  }
  const r = cmd.reconnect;
  const c = new Client({
    address: cmd.address ?? "",
    ...(cmd.refreshable
      ? {
          tokenSource: () => {
            sc.fetches++;
            emit({ event: "token_fetched", client: name, n: sc.fetches });
            return Promise.resolve(sc.token);
          },
        }
      : { token: cmd.token ?? "" }),
    sessionId: cmd.session_id ?? "",
    deviceId: cmd.device_id ?? "",
    clientVersion: cmd.client_version ?? "",
    noReconnect: cmd.no_reconnect ?? false,
    dedupWindow: cmd.dedup_window ?? 0,
    maxFrameBytes: cmd.max_frame_bytes ?? 0,
    ...(r ? { reconnect: { initialMs: r.initial_ms ?? 0, maxMs: r.max_ms ?? 0, lostSpreadMs: r.lost_spread_ms ?? 0 } } : {}),
    ...(isWebSocketAddress(cmd.address ?? "")
      ? { webSocket: { WebSocket: webSocketClass(cmd.tls, cmd.max_frame_bytes ?? 0) } }
      : cmd.tls
        ? { tls: { ...(cmd.tls.ca_pem ? { ca: cmd.tls.ca_pem } : {}), ...(cmd.tls.server_name ? { servername: cmd.tls.server_name } : {}) } }
        : {}),
    ...(resume ? { resume } : {}),
  });
  sc.client = c;
  c.on("connected", (ack) => {
    emit({ event: "state", client: name, state: "connected", ack: ackOf(ack) });
  });
  c.on("disconnected", (cause) => {
    emit({ event: "state", client: name, state: "disconnected", cause: failure(cause) });
  });
  c.on("push", (p) => {
    sc.pushes.set(p.messageId, p);
    emit({ event: "push", client: name, push: pushOf(p) });
  });
  c.on("refused", (e) => {
    emit({ event: "error", client: name, code: codeName(e.code), message: e.message, seq: 0 });
  });
  c.on("stopped", (why) => {
    if (sc.live) emit({ event: "state", client: name, state: "stopped", cause: failure(why) });
    else sc.pendingStop = why;
  });
  const connecting = c.connect();
  try {
    await withDeadline(deadline, connecting);
  } catch (e) {
    void connecting.then(() => c.close()).catch(() => undefined);
    throw e;
  }
  clients.set(name, sc);
  return { session_id: c.sessionId };
}

async function run(cmd: Command): Promise<void> {
  const name = cmd.client || "c";
  const res: Json = { event: "result", id: cmd.id ?? 0, client: name };
  const deadline = cmd.deadline_ms && cmd.deadline_ms > 0 ? cmd.deadline_ms : 30000;
  let afterResult: (() => void) | undefined;
  try {
    if (cmd.op === "connect") {
      Object.assign(res, await connect(cmd, name, deadline));
      const sc = clients.get(name);
      if (sc) {
        afterResult = () => {
          sc.live = true;
          if (sc.pendingStop) emit({ event: "state", client: name, state: "stopped", cause: failure(sc.pendingStop) });
        };
      }
    } else {
      const sc = clients.get(name);
      if (!sc) throw new DriverError("bad_command", `no client ${name}`);
      const c = sc.client;
      switch (cmd.op) {
        case "request": {
          const signal = AbortSignal.timeout(deadline);
          const r = await c.request(cmd.service ?? "", cmd.method ?? "", Buffer.from(cmd.payload ?? "", "base64"), {
            headers: cmd.headers ?? {},
            timeoutMs: cmd.timeout_ms ?? 0,
            signal,
          });
          res.response = { code: codeName(r.code), status: r.status, payload: b64(r.payload), headers: r.headers, message: r.message };
          break;
        }
        case "ping":
          res.rtt_ms = await c.ping(AbortSignal.timeout(deadline));
          break;
        case "ack":
        case "reply": {
          const p = sc.pushes.get(cmd.message_id ?? "");
          if (!p) throw new DriverError("bad_command", `no push delivered with message id ${cmd.message_id ?? ""}`);
          await withDeadline(deadline, cmd.op === "ack" ? p.ack() : p.reply(Buffer.from(cmd.payload ?? "", "base64")));
          break;
        }
        case "set_token":
          sc.token = cmd.token ?? "";
          break;
        case "session_id":
          res.session_id = c.sessionId;
          break;
        case "export_positions": {
          const s = c.exportResumeState();
          res.positions = { session_id: s.sessionId, positions: s.positions, resume_token: s.resumeToken };
          break;
        }
        case "close":
          await c.close();
          break;
        default:
          throw new DriverError("unsupported", `unknown op ${cmd.op ?? ""}`);
      }
    }
    res.ok = true;
  } catch (e) {
    res.error = failure(e);
  }
  emit(res);
  afterResult?.();
}

function main(): void {
  emit({ event: "ready", driver: "ts", capabilities: ["positions", "websocket"] });
  const running = new Set<Promise<void>>();
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    let cmd: Command;
    try {
      cmd = JSON.parse(line) as Command;
    } catch (e) {
      emit({ event: "result", error: { kind: "bad_command", message: e instanceof Error ? e.message : String(e) } });
      return;
    }
    // Commands run concurrently: a request waiting for its response holds up nothing.
    const p = run(cmd).finally(() => running.delete(p));
    running.add(p);
  });
  lines.on("close", () => {
    // Exit within the 5 s DRIVER.md allows, whatever a close still waits for.
    setTimeout(() => process.exit(0), 4000).unref();
    void Promise.all([...clients.values()].map((sc) => sc.client.close())).finally(() => {
      process.exit(0);
    });
  });
}

main();
