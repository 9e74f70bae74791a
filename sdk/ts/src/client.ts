// The Client keeps one session with a gateway alive across connections, as
// docs/client-behaviour.md specifies (rules R1-R41) and the Go SDK (sdk/go/client) does:
// handshake, heartbeats, requests by seq, pushes in order without duplicates, resume with
// positions and floors, GOAWAY, ERROR codes, backoff with jitter, token refresh.
import { create } from "@bufbuild/protobuf";
import { PROTOCOL_VERSION, DEFAULT_MAX_FRAME_BYTES } from "./codec.js";
import { Conn, LeavingError } from "./conn.js";
import type { ConnHandlers } from "./conn.js";
import { afterLoss, delay, withDefaults } from "./backoff.js";
import type { Backoff } from "./backoff.js";
import { IdWindow } from "./dedup.js";
import { AlreadyAnsweredError, ClosedError, GoAwayError, NotRequestedError, ServerError, TokenSourceError, asError } from "./errors.js";
import { ErrorCode, GoAway_Reason, HandshakeSchema, PositionSchema, ResumeSchema } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { Error as ErrorFrame, HandshakeAck, Position, Push, RefreshRequest, Response } from "./gen/tcpgateway/v1/protocol_pb.js";
import type { TransportFactory } from "./transport.js";
import { isWebSocketAddress, webSocketTransport } from "./websocket.js";
import type { WebSocketOptions } from "./websocket.js";

/** TokenSource returns a token valid now; asked before every handshake and on every REFRESH_REQUEST (R33). */
export type TokenSource = (signal: AbortSignal) => Promise<string>;

/** A position in the downlink topic; offset -1 means "nothing from this partition" (R22). */
export interface ResumePosition {
  partition: number;
  offset: bigint;
}

/** ResumeState is what an app stores to resume its session after a restart (R36). */
export interface ResumeState {
  sessionId: string;
  positions: ResumePosition[];
  resumeToken?: string;
}

export interface ClientOptions {
  /**
   * The gateway (its Service / load balancer): a ws:// or wss:// URL with its path (WebSocket),
   * or, in Node.js, host:port (TCP). Every reconnect goes there (R1).
   */
  address: string;
  /** A fixed token, for tools and tests: it cannot be refreshed (R35). */
  token?: string;
  /** Replaces token: asked before every handshake and on every REFRESH_REQUEST (R33). */
  tokenSource?: TokenSource;
  /** Consecutive UNAUTHENTICATED/TOKEN_EXPIRED refusals with a token source before stopping. Default 10; negative: never. */
  authAttempts?: number;
  /** Recent message ids remembered to drop duplicate records (R18). Default 1024; negative: off. */
  dedupWindow?: number;
  /** Session id to open; empty: the gateway assigns one, kept across reconnects. */
  sessionId?: string;
  deviceId?: string;
  clientVersion?: string;
  /** Resume a stored session (exportResumeState of an earlier run): the first connect resumes it (R36). */
  resume?: ResumeState;
  /** The WebSocket transport's options (a ws:// or wss:// address). */
  webSocket?: WebSocketOptions;
  /** Replaces the transport the address chooses. */
  transport?: TransportFactory;
  /** Largest frame body accepted and sent. Default 65536. Sends are also capped by HandshakeAck.max_frame_bytes. */
  maxFrameBytes?: number;
  /** Bounds token fetch + dial + TLS + handshake. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  reconnect?: Backoff;
  /** Stop at the first loss instead of reconnecting. */
  noReconnect?: boolean;
}

/** ClientEvents are the events a Client emits, in the order things happen. */
export interface ClientEvents {
  /** After every successful handshake (first and reconnects), with the HANDSHAKE_ACK (R7, R24). */
  connected: (ack: HandshakeAck) => void;
  /** A connection ended or was told to go away (R26), with the cause. */
  disconnected: (cause: Error) => void;
  /** Once, when the client stopped for good (R29, R40). */
  stopped: (reason: Error) => void;
  /** A push, in order, each once (R16-R18). Runs on the reader: hand long work off (R41). */
  push: (push: ReceivedPush) => void;
  /** A non-fatal ERROR: one frame of this client was refused, the session goes on (R28). */
  refused: (error: ErrorFrame) => void;
}

/** Listeners given to connect(): registered before the first handshake, so nothing is missed. */
export type ClientListeners = { [E in keyof ClientEvents]?: ClientEvents[E] };

/** RequestOptions adjust one request. */
export interface RequestOptions {
  /** Forwarded to the backend as X-Tcpgw-Meta-* headers. */
  headers?: Record<string, string>;
  /** Asks the gateway to give up on the backend sooner than the route's timeout. */
  timeoutMs?: number;
  /** Gives up waiting (the request may still reach the backend). */
  signal?: AbortSignal;
}

/** movesSession: the GOAWAY asks the client to resume elsewhere with its token (R26, R42). */
function movesSession(r: GoAway_Reason): boolean {
  return r === GoAway_Reason.DRAINING || r === GoAway_Reason.REBALANCE;
}

/** defaultTransport is WebSocket for a ws:// or wss:// address; other addresses need a transport. */
function defaultTransport(o: ClientOptions): TransportFactory {
  if (!isWebSocketAddress(o.address)) {
    throw new TypeError(`tcpgateway: address ${JSON.stringify(o.address)} is not a ws:// or wss:// URL (TCP needs the Node.js entry point, or give a transport)`);
  }
  return webSocketTransport(o.webSocket);
}

/** MAX_RESENDS bounds resends of one request answered DRAINING (R15). */
const MAX_RESENDS = 3;
/** The UNAUTHENTICATED reason when the gateway's auth webhook could not answer. */
const REASON_WEBHOOK_UNAVAILABLE = "webhook_unavailable";

/**
 * ReceivedPush is a Push with its answers. It refuses locally, writing nothing, the answers the
 * gateway would refuse (R19): each refused answer counts toward the gateway's
 * `limits.refusedAnswers`, so sending them would let an app's double tap close its session. The
 * marks live on this object, not in a table of the client: a push delivered before a reconnect
 * can still be answered after it (only the gateway knows whether its window still holds it).
 */
export class ReceivedPush {
  /** Set by the first ack, cleared again if its write failed (nothing reached the gateway). */
  private acked = false;
  /** Set by the first reply, cleared again if its write failed. */
  private replied = false;

  constructor(
    readonly push: Push,
    private readonly client: Client,
  ) {}
  get messageId(): string {
    return this.push.messageId;
  }
  get payload(): Uint8Array {
    return this.push.payload;
  }
  get position(): ResumePosition | undefined {
    return this.push.position ? { partition: this.push.position.partition, offset: this.push.position.offset } : undefined;
  }
  /**
   * ack confirms a push that asked for it (ackRequired), echoing its id and position (R19).
   * Rejects with NotRequestedError for a push without ackRequired and with
   * AlreadyAnsweredError after an earlier ack (or while one is being written), writing nothing.
   * An ack whose write failed leaves the push unanswered: the app may ack it again.
   */
  async ack(): Promise<void> {
    const p = this.push;
    if (!p.ackRequired) throw new NotRequestedError("ack", p.messageId);
    // Checked and set before the first await: of two racing acks, exactly one goes on.
    if (this.acked) throw new AlreadyAnsweredError("ack", p.messageId);
    this.acked = true;
    try {
      await this.client.writeAnswer({ body: { case: "pushAck", value: { messageId: p.messageId, position: p.position } } });
    } catch (e) {
      this.acked = false;
      throw e;
    }
  }
  /**
   * reply answers a push that expects a reply (replyExpected) (R19), refusing like ack:
   * NotRequestedError for a push without replyExpected, AlreadyAnsweredError after a reply.
   */
  async reply(payload: Uint8Array): Promise<void> {
    const p = this.push;
    if (!p.replyExpected) throw new NotRequestedError("reply", p.messageId);
    if (this.replied) throw new AlreadyAnsweredError("reply", p.messageId);
    this.replied = true;
    try {
      await this.client.writeAnswer({ body: { case: "pushReply", value: { messageId: p.messageId, payload, position: p.position } } });
    } catch (e) {
      this.replied = false;
      throw e;
    }
  }
}

type Waiter = { resolve: (c: Conn) => void; reject: (e: Error) => void };

export class Client {
  private readonly opts: ClientOptions;
  private readonly backoff: ReturnType<typeof withDefaults>;
  private readonly maxFrameBytes: number;
  private readonly handshakeTimeoutMs: number;
  private readonly authAttempts: number;
  private readonly transport: TransportFactory;
  private readonly listeners: { [E in keyof ClientEvents]: ClientEvents[E][] } = {
    connected: [],
    disconnected: [],
    stopped: [],
    push: [],
    refused: [],
  };

  private cur: Conn | undefined;
  private waiters: Waiter[] = [];
  private sessionIdValue: string;
  private resumeToken = "";
  private readonly positions = new Map<number, bigint>(); // last delivered offset per partition (R17)
  private readonly floor = new Map<number, bigint>(); // adopted watermarks (R22)
  private readonly seen: IdWindow;
  private stopReasonValue: Error | undefined;
  private started = false;
  private stopRequested: (() => void) | undefined;
  private readonly stopAbort = new AbortController(); // aborts a handshake in progress on close()
  private readonly stopPromise: Promise<void>;
  private doneResolve!: () => void;
  /** Resolves once the client stopped for good (see stopReason). */
  readonly done: Promise<void>;

  constructor(options: ClientOptions) {
    if (options.token === undefined && !options.tokenSource) {
      throw new TypeError("tcpgateway: one of token or tokenSource is required");
    }
    this.opts = options;
    this.backoff = withDefaults(options.reconnect);
    this.maxFrameBytes = options.maxFrameBytes || DEFAULT_MAX_FRAME_BYTES;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs || 10000;
    this.authAttempts = options.authAttempts || 10;
    this.transport = options.transport ?? defaultTransport(options);
    this.seen = new IdWindow(options.dedupWindow || 1024);
    this.sessionIdValue = options.resume?.sessionId ?? options.sessionId ?? "";
    if (options.resume) {
      this.resumeToken = options.resume.resumeToken ?? "";
      for (const p of options.resume.positions) {
        this.positions.set(p.partition, p.offset);
      }
    }
    this.stopPromise = new Promise((r) => (this.stopRequested = r));
    this.done = new Promise((r) => (this.doneResolve = r));
  }

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this {
    this.listeners[event].push(listener);
    return this;
  }

  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this {
    const l = this.listeners[event] as ClientEvents[E][];
    const i = l.indexOf(listener);
    if (i >= 0) {
      l.splice(i, 1);
    }
    return this;
  }

  /** connect opens the first connection; it fails with the first failure and does not retry (R9). */
  async connect(): Promise<void> {
    if (this.started) {
      throw new Error("tcpgateway: connect called twice");
    }
    this.started = true;
    let first: Conn;
    try {
      first = await this.connectOnce();
    } catch (e) {
      this.finish(asError(e));
      throw e;
    }
    void this.supervise(first);
  }

  /** The session id (the gateway's when none was given). */
  get sessionId(): string {
    return this.sessionIdValue;
  }

  /** Why the client stopped; undefined while it runs. */
  get stopReason(): Error | undefined {
    return this.stopReasonValue;
  }

  /**
   * exportResumeState is what to store to resume this session after an app restart (R36):
   * per partition the larger of the last delivered offset and the floor, and the resume token
   * of a GOAWAY DRAINING or REBALANCE while its reconnect is pending (R26). Export after the app has
   * processed what it was delivered.
   */
  exportResumeState(): ResumeState {
    const state: ResumeState = { sessionId: this.sessionIdValue, positions: this.resumePositions() };
    if (this.resumeToken) {
      state.resumeToken = this.resumeToken;
    }
    return state;
  }

  /**
   * request calls method on a backend service (R11-R15). A response whose code is not OK says
   * why the gateway got no answer. A request in flight when its connection dies rejects with
   * ConnectionLostError: only the app may retry it.
   */
  async request(service: string, method: string, payload: Uint8Array = new Uint8Array(), options: RequestOptions = {}): Promise<Response> {
    const req = { service, method, payload, headers: options.headers ?? {}, timeoutMs: options.timeoutMs ?? 0 };
    let cn = await this.current(options.signal);
    for (let resends = 0; ; resends++) {
      try {
        const f = await cn.call({ body: { case: "request", value: req } }, options.signal);
        if (f.body.case !== "response") {
          throw new Error(`tcpgateway: internal error: ${f.body.case ?? "no body"} answered a request`);
        }
        if (f.body.value.code !== ErrorCode.DRAINING || resends >= MAX_RESENDS) {
          return f.body.value;
        }
        // It crossed the GOAWAY: the gateway did not forward it, same as not sent (R15).
      } catch (e) {
        if (!(e instanceof LeavingError)) {
          throw e;
        }
        // Not sent: it goes out on the next connection.
      }
      cn = await this.next(cn, options.signal);
    }
  }

  /** ping measures a round trip to the gateway, in milliseconds. */
  async ping(signal?: AbortSignal): Promise<number> {
    const cn = await this.current(signal);
    const start = performance.now();
    await cn.call({ body: { case: "ping", value: { clientTimeMs: BigInt(Date.now()) } } }, signal);
    return performance.now() - start;
  }

  /**
   * writeAnswer writes a PUSH_ACK or PUSH_REPLY on the current connection, for ReceivedPush,
   * which refuses first what the gateway would refuse (R19). Not for apps.
   * @internal
   */
  async writeAnswer(f: Parameters<Conn["write"]>[0]): Promise<void> {
    const cn = await this.current();
    await cn.write(f);
  }

  /** close ends the connection and stops reconnecting (R40); resolves once stopped. */
  async close(): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.finish(new ClosedError());
    }
    this.stopAbort.abort(new ClosedError());
    this.stopRequested?.();
    await this.done;
  }

  // --- connections

  private async connectOnce(): Promise<Conn> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.handshakeTimeoutMs), this.stopAbort.signal]);
    let token: string;
    try {
      token = this.opts.tokenSource ? await this.opts.tokenSource(signal) : (this.opts.token ?? "");
    } catch (e) {
      throw new TokenSourceError(e);
    }
    const hs = create(HandshakeSchema, {
      protocolVersion: PROTOCOL_VERSION,
      token,
      sessionId: this.sessionIdValue,
      deviceId: this.opts.deviceId ?? "",
      clientVersion: this.opts.clientVersion ?? "",
    });
    if (this.resumeToken !== "" || this.positions.size > 0 || this.floor.size > 0) {
      hs.resume = create(ResumeSchema, {
        resumeToken: this.resumeToken,
        positions: this.resumePositions().map((p) => create(PositionSchema, p)),
      });
    }
    const resumed = hs.resume !== undefined;
    const transport = await this.transport(this.opts.address, signal);
    const handlers: ConnHandlers = {
      onAck: (c) => {
        this.attach(c, resumed);
      },
      onPush: (p) => {
        this.deliver(p);
      },
      onLeave: (c) => {
        this.detach(c);
      },
      onRefresh: (c, r) => this.refresh(c, r),
      onRefused: (e) => {
        this.emit("refused", e);
      },
    };
    const cn = new Conn(transport, this.maxFrameBytes, handlers);
    await cn.handshake(hs, signal);
    if (resumed) {
      void this.confirmWatermarks(cn);
    }
    return cn;
  }

  // attach makes cn current; it runs on the HANDSHAKE_ACK, before any frame after it.
  private attach(cn: Conn, resumed: boolean): void {
    const ack = cn.ack;
    if (!ack) {
      return;
    }
    this.sessionIdValue = ack.sessionId;
    // The resume token belongs to the move a GOAWAY DRAINING or REBALANCE asked for: this handshake was
    // acknowledged, so the move is over, whatever its result (R26).
    this.resumeToken = "";
    this.cur = cn;
    if (!resumed) {
      // A new session is owed nothing from before its watermarks: they are its floor at once.
      this.raiseFloor(ack.positions);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      w.resolve(cn);
    }
    this.emit("connected", ack);
  }

  // confirmWatermarks adopts the watermarks once a PONG proves the resume replay arrived (R22).
  private async confirmWatermarks(cn: Conn): Promise<void> {
    try {
      await cn.call({ body: { case: "ping", value: { clientTimeMs: BigInt(Date.now()) } } }, AbortSignal.timeout(this.handshakeTimeoutMs));
    } catch {
      return;
    }
    this.raiseFloor(cn.ack?.positions ?? []);
  }

  private raiseFloor(watermarks: Position[]): void {
    for (const w of watermarks) {
      // -1 (an empty partition) is a real floor: keep it (R22).
      const cur = this.floor.get(w.partition);
      if (cur === undefined || w.offset > cur) {
        this.floor.set(w.partition, w.offset);
      }
    }
  }

  private resumePositions(): ResumePosition[] {
    const from = new Map(this.floor);
    for (const [p, o] of this.positions) {
      const cur = from.get(p);
      if (cur === undefined || o > cur) {
        from.set(p, o);
      }
    }
    return [...from].sort((a, b) => a[0] - b[0]).map(([partition, offset]) => ({ partition, offset }));
  }

  private detach(cn: Conn): void {
    if (this.cur === cn) {
      this.cur = undefined;
    }
  }

  // deliver drops replays (same position or before) and a publisher's duplicates (same id);
  // a duplicate still advances the position (R17, R18).
  private deliver(p: Push): void {
    if (p.position) {
      const last = this.positions.get(p.position.partition);
      if (last !== undefined && p.position.offset <= last) {
        return;
      }
      this.positions.set(p.position.partition, p.position.offset);
    }
    if (!this.seen.add(p.messageId)) {
      return;
    }
    this.emit("push", new ReceivedPush(p, this));
  }

  // refresh answers a REFRESH_REQUEST with tokens from the source until one is accepted, the
  // deadline passes or the connection ends (R34). A fixed token cannot refresh (R35).
  private async refresh(cn: Conn, req: RefreshRequest): Promise<void> {
    const source = this.opts.tokenSource;
    if (!source) {
      return;
    }
    const deadline = Math.max(Number(req.deadlineMs), Date.now() + this.handshakeTimeoutMs);
    const signal = AbortSignal.any([AbortSignal.timeout(Math.max(0, deadline - Date.now())), endSignal(cn)]);
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const token = await source(signal);
        const f = await cn.call({ body: { case: "refresh", value: { token } } }, signal);
        if (f.body.case === "refreshAck" && f.body.value.code === ErrorCode.OK) {
          return;
        }
      } catch (e) {
        if (cn.err || e instanceof LeavingError) {
          return; // the connection ended: the next one authenticates with a new token
        }
      }
      if (!(await sleep(delay(this.backoff, attempt), signal))) {
        return;
      }
    }
  }

  // --- supervision

  private async supervise(first: Conn): Promise<void> {
    let cn = first;
    const stopped = this.stopPromise.then(() => undefined);
    for (;;) {
      const cause = await Promise.race([cn.ended, cn.leaving.then((g) => new GoAwayError(g)), stopped]);
      if (cause === undefined) {
        cn.close(new ClosedError());
        this.finish(new ClosedError());
        return;
      }
      this.keepResumeToken(cause);
      this.emit("disconnected", cause);
      this.detach(cn);

      const [afterWait, fatal] = this.afterDisconnect(cause);
      let wait = afterWait;
      let refusals = 0;
      if (isAuthRefusal(cause)) {
        refusals = 1; // the session ended because of its token (R32)
        wait = delay(this.backoff, 0);
      }
      if (fatal || this.opts.noReconnect) {
        this.finish(cause);
        return;
      }
      for (let attempt = 0; ; ) {
        if (!(await sleep(wait, undefined, this.stopPromise))) {
          this.finish(new ClosedError());
          return;
        }
        try {
          cn = await this.connectOnce();
          break;
        } catch (e) {
          const err = asError(e);
          if (isAuthRefusal(err)) {
            refusals++;
          }
          if (this.stopAfter(err, refusals)) {
            this.finish(err);
            return;
          }
          wait = delay(this.backoff, attempt);
          attempt++;
        }
      }
    }
  }

  // keepResumeToken keeps the resume token of a GOAWAY DRAINING or REBALANCE for the reconnect
  // it asks for (R26, R42): every handshake until one is acknowledged carries it, and so does an
  // export meanwhile. Set before the app hears of the disconnect, so an export from the listener
  // has it. The token of a reason this client does not know is not kept (R43).
  private keepResumeToken(cause: Error): void {
    if (cause instanceof GoAwayError && movesSession(cause.goaway.reason)) {
      this.resumeToken = cause.goaway.resumeToken;
    }
  }

  // afterDisconnect: how long to wait before reconnecting, and whether to stop.
  private afterDisconnect(cause: Error): [number, boolean] {
    if (cause instanceof GoAwayError) {
      if (cause.goaway.reason === GoAway_Reason.REPLACED) {
        return [0, true]; // another connection took the session over (R27)
      }
      return [cause.goaway.reconnectDelayMs, false];
    }
    if (this.stopAfter(cause, 0)) {
      return [0, true];
    }
    return [afterLoss(this.backoff), false];
  }

  // stopAfter: errors the next handshake would hit again stop the client (R29).
  private stopAfter(err: Error, refusals: number): boolean {
    if (!(err instanceof ServerError)) {
      return false; // transport errors, token source errors: retried with backoff
    }
    if (err.code === ErrorCode.UNSUPPORTED_VERSION) {
      return true;
    }
    if (!isAuthRefusal(err) || err.reason === REASON_WEBHOOK_UNAVAILABLE) {
      return false;
    }
    if (!this.opts.tokenSource) {
      return true;
    }
    return this.authAttempts >= 0 && refusals >= this.authAttempts;
  }

  private finish(reason: Error): void {
    if (this.stopReasonValue) {
      return;
    }
    this.stopReasonValue = reason;
    this.cur = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      w.reject(reason);
    }
    this.emit("stopped", reason);
    this.doneResolve();
  }

  // current waits for a live connection; a stopped client fails with its stop reason.
  private current(signal?: AbortSignal): Promise<Conn> {
    if (this.stopReasonValue) {
      return Promise.reject(this.stopReasonValue);
    }
    if (this.cur) {
      return Promise.resolve(this.cur);
    }
    if (!this.started) {
      return Promise.reject(new Error("tcpgateway: connect first"));
    }
    return new Promise<Conn>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      this.waiters.push(w);
      signal?.addEventListener(
        "abort",
        () => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(asError(signal.reason));
        },
        { once: true },
      );
    });
  }

  // next waits for a live connection other than old (which detached itself on GOAWAY).
  private async next(old: Conn, signal?: AbortSignal): Promise<Conn> {
    const cn = await this.current(signal);
    if (cn === old) {
      throw new Error("tcpgateway: internal error: a leaving connection is still current");
    }
    return cn;
  }

  private emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    for (const l of [...this.listeners[event]]) {
      try {
        (l as (...a: Parameters<ClientEvents[E]>) => void)(...args);
      } catch (e) {
        // An app listener that throws must not break the reader; report it like Node does.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

/** isAuthRefusal: the gateway refused the token, or closed the session because it expired. */
function isAuthRefusal(err: Error): boolean {
  return err instanceof ServerError && (err.code === ErrorCode.UNAUTHENTICATED || err.code === ErrorCode.TOKEN_EXPIRED);
}

/** endSignal aborts when cn ends or is told to go away. */
function endSignal(cn: Conn): AbortSignal {
  const ac = new AbortController();
  void cn.ended.then(() => {
    ac.abort(new Error("connection ended"));
  });
  void cn.leaving.then(() => {
    ac.abort(new Error("connection going away"));
  });
  return ac.signal;
}

/** sleep resolves true after ms, false when signal aborts or stop resolves first. */
function sleep(ms: number, signal?: AbortSignal, stop?: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    void stop?.then(onAbort);
  });
}

/** connect creates a client with listeners registered before its first handshake and connects it. */
export function connect(options: ClientOptions & { on?: ClientListeners }): Promise<Client> {
  return connectWith(new Client(options), options.on);
}

/** connectWith registers listeners on c before its first handshake and connects it. */
export async function connectWith<C extends Client>(c: C, on: ClientListeners = {}): Promise<C> {
  for (const key of Object.keys(on) as (keyof ClientEvents)[]) {
    const l = on[key];
    if (l) {
      c.on(key, l);
    }
  }
  await c.connect();
  return c;
}
