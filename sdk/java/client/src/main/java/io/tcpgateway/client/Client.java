package io.tcpgateway.client;

import com.google.protobuf.ByteString;
import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.GoAway;
import tcpgateway.v1.Protocol.Handshake;
import tcpgateway.v1.Protocol.HandshakeAck;
import tcpgateway.v1.Protocol.Ping;
import tcpgateway.v1.Protocol.Position;
import tcpgateway.v1.Protocol.Push;
import tcpgateway.v1.Protocol.PushAck;
import tcpgateway.v1.Protocol.PushReply;
import tcpgateway.v1.Protocol.Refresh;
import tcpgateway.v1.Protocol.RefreshRequest;
import tcpgateway.v1.Protocol.Request;
import tcpgateway.v1.Protocol.Response;
import tcpgateway.v1.Protocol.Resume;

/**
 * A session with a tcpgateway, kept alive across connections: handshake, heartbeats, requests
 * correlated by seq, pushes delivered in order without duplicates (by position and message id),
 * reconnects with backoff and jitter honouring GOAWAY, resume from positions and watermarks, and
 * token refresh. It implements docs/client-behaviour.md as the Go SDK (sdk/go/client) does.
 *
 * <pre>{@code
 * Client c = Client.builder().address("gw.example.com:7000").tokenSource(auth::freshToken)
 *     .listener(new Listener() { public void onPush(ReceivedPush p) { show(p); p.ack(); } })
 *     .connect();
 * c.request("chat", "send", bytes).thenAccept(r -> ...);
 * }</pre>
 *
 * <p>Thread-safe. Network I/O never runs on the caller's thread except in {@link
 * Builder#connect()}, which blocks until the first handshake (call it off Android's main thread).
 */
public final class Client implements AutoCloseable {
  /** The protocol version this SDK speaks. */
  public static final int PROTOCOL_VERSION = 2;
  /** How often one request is resent after DRAINING answers (each goes to a newer connection). */
  static final int MAX_RESENDS = 3;

  private static final AtomicInteger IDS = new AtomicInteger();

  private final Builder o;
  private final Random rnd = new SecureRandom();
  private final ScheduledExecutorService timers;
  private final ExecutorService io;
  private final String name;

  private final Object lock = new Object(); // guards everything below
  private Conn cur;
  private CompletableFuture<Conn> up = new CompletableFuture<>();
  private String sessionId;
  private String resumeToken = "";
  private final Map<Integer, Long> positions = new HashMap<>(); // last delivered offset per partition
  private final IdWindow seen;
  private final Map<Integer, Long> floor = new HashMap<>(); // confirmed watermarks
  private IOException stopReason;
  private java.net.Socket dialing; // the socket of a connect in progress
  private int addressIndex;

  private final CompletableFuture<Void> stop = new CompletableFuture<>();
  private final CompletableFuture<IOException> done = new CompletableFuture<>();

  private Client(Builder o) {
    this.o = o;
    this.name = "tcpgw-client-" + IDS.incrementAndGet();
    this.seen = new IdWindow(o.dedupWindow);
    this.sessionId = o.sessionId;
    if (o.resumeState != null) {
      sessionId = o.resumeState.sessionId();
      resumeToken = o.resumeState.resumeToken();
      // Imported positions are a floor: the app has what they name (R36).
      floor.putAll(o.resumeState.positions());
    }
    ThreadFactory tf = r -> {
      Thread t = new Thread(r, name + "-worker");
      t.setDaemon(true);
      return t;
    };
    timers = Executors.newSingleThreadScheduledExecutor(tf);
    // One sender thread: frames go out in the order the app asked for them (a request, then an
    // ack, ...), and no network I/O runs on the app's thread (Android's main thread forbids it).
    io = Executors.newSingleThreadExecutor(tf);
  }

  public static Builder builder() {
    return new Builder();
  }

  private void connectFirst() throws IOException {
    IOException last = null;
    // Each address once, in order; a gateway's answer (an ERROR) ends the attempt (R9).
    for (int i = 0; i < o.addresses.size(); i++) {
      try {
        Conn first = connectOnce(o.addresses.get(i));
        synchronized (lock) {
          addressIndex = i;
        }
        Thread t = new Thread(() -> supervise(first), name + "-supervisor");
        t.setDaemon(true);
        t.start();
        return;
      } catch (Errors.ServerError | Errors.TokenSourceFailed e) {
        last = e;
        break;
      } catch (IOException e) {
        last = e;
      }
    }
    shutdownExecutors();
    done.complete(last);
    throw last;
  }

  private Conn connectOnce(String address) throws IOException {
    String token;
    try {
      token = o.tokenSource.token();
    } catch (Exception e) {
      throw new Errors.TokenSourceFailed(e);
    }
    Handshake.Builder hs = Handshake.newBuilder()
        .setProtocolVersion(PROTOCOL_VERSION)
        .setToken(token == null ? "" : token)
        .setDeviceId(o.deviceId)
        .setClientVersion(o.clientVersion);
    boolean resume;
    synchronized (lock) {
      hs.setSessionId(sessionId);
      resume = !resumeToken.isEmpty() || !positions.isEmpty() || !floor.isEmpty();
      if (resume) {
        Resume.Builder r = Resume.newBuilder().setResumeToken(resumeToken);
        for (Map.Entry<Integer, Long> e : resumeFromLocked().entrySet()) {
          r.addPositions(Position.newBuilder().setPartition(e.getKey()).setOffset(e.getValue()));
        }
        hs.setResume(r);
      }
    }
    Conn cn;
    try {
      cn = Conn.dial(address, o.tls, o.tlsServerName, o.handshakeTimeoutMs, o.maxFrameBytes, o.firstSeq,
          Frame.newBuilder().setHandshake(hs).build(), handler, timers, role -> name + "-" + role, this::dialing);
    } finally {
      // The dial is over: close() ends a connection through the supervisor (Conn.close, which
      // sends a WebSocket its close frame), not by closing its socket under it.
      synchronized (lock) {
        dialing = null;
      }
    }
    synchronized (lock) {
      sessionId = cn.ack.getSessionId();
      // The resume token belongs to the move a GOAWAY DRAINING or REBALANCE asked for: this
      // handshake was acknowledged, so the move is over, whatever its result (R26).
      resumeToken = "";
      cur = cn;
      up.complete(cn);
      if (!resume) {
        // A new session is owed nothing from before its watermarks: they are its floor at once.
        raiseFloorLocked(cn.ack.getPositionsList());
      }
    }
    o.listener.onConnected(cn.ack);
    if (resume) {
      confirmWatermarks(cn);
    }
    return cn;
  }

  private void dialing(java.net.Socket s) {
    synchronized (lock) {
      dialing = s;
    }
    if (stop.isDone()) {
      closeQuietly(s);
    }
  }

  private static void closeQuietly(java.net.Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // aborting a connect
    }
  }

  /** Per partition, the larger of the last delivered offset and the floor (R23). */
  private Map<Integer, Long> resumeFromLocked() {
    Map<Integer, Long> from = new TreeMap<>(floor);
    for (Map.Entry<Integer, Long> e : positions.entrySet()) {
      Long cur = from.get(e.getKey());
      if (cur == null || e.getValue() > cur) {
        from.put(e.getKey(), e.getValue());
      }
    }
    return from;
  }

  /**
   * Raises the floor to the watermarks once a PONG proves that everything queued before it (the
   * resume replay) has arrived (R22).
   */
  private void confirmWatermarks(Conn cn) {
    within(cn.call(Frame.newBuilder().setPing(Ping.newBuilder().setClientTimeMs(System.currentTimeMillis()))), o.handshakeTimeoutMs)
        .thenRun(() -> {
          synchronized (lock) {
            raiseFloorLocked(cn.ack.getPositionsList());
          }
        });
  }

  private void raiseFloorLocked(List<Position> watermarks) {
    for (Position w : watermarks) {
      // -1 (an empty partition) is a real floor: a record later written at offset 0 is owed.
      Long cur = floor.get(w.getPartition());
      if (cur == null || w.getOffset() > cur) {
        floor.put(w.getPartition(), w.getOffset());
      }
    }
  }

  private final Conn.Handler handler = new Conn.Handler() {
    @Override
    public void push(Conn c, Push p) {
      deliver(p);
    }

    @Override
    public void leave(Conn c) {
      detach(c);
    }

    @Override
    public void refused(tcpgateway.v1.Protocol.Error e) {
      o.listener.onRefused(e);
    }

    @Override
    public void refresh(Conn c, RefreshRequest r) {
      Client.this.refresh(c, r);
    }
  };

  /** Drops replays (same position) and a publisher's duplicates (same id at another position). */
  private void deliver(Push p) {
    boolean dup;
    synchronized (lock) {
      if (p.hasPosition()) {
        Position pos = p.getPosition();
        Long last = positions.get(pos.getPartition());
        if (last != null && pos.getOffset() <= last) {
          return;
        }
        positions.put(pos.getPartition(), pos.getOffset());
      }
      dup = !seen.add(p.getMessageId());
    }
    if (!dup) {
      o.listener.onPush(new ReceivedPush(this, p));
    }
  }

  private void detach(Conn cn) {
    synchronized (lock) {
      if (cur == cn) {
        cur = null;
        up = new CompletableFuture<>();
      }
    }
  }

  /**
   * Answers REFRESH_REQUEST with a token from the source, retrying with backoff until the
   * deadline (at least the handshake timeout from now). A fixed token cannot refresh (R35).
   */
  private void refresh(Conn cn, RefreshRequest req) {
    if (!o.refreshable) {
      return;
    }
    long deadline = Math.max(req.getDeadlineMs(), System.currentTimeMillis() + o.handshakeTimeoutMs);
    for (int attempt = 0; System.currentTimeMillis() < deadline; attempt++) {
      try {
        String token = o.tokenSource.token();
        Frame f = within(cn.call(Frame.newBuilder().setRefresh(Refresh.newBuilder().setToken(token))),
            Math.max(1, deadline - System.currentTimeMillis())).get();
        if (f.getRefreshAck().getCode() == ErrorCode.ERROR_CODE_OK) {
          return;
        }
      } catch (ExecutionException e) {
        if (cn.err() != null || e.getCause() instanceof Errors.Leaving) {
          return; // the connection ended; the next one authenticates with a new token
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (Exception e) {
        // the token source failed: retried with backoff
      }
      try {
        cn.done.get(Math.min(o.backoff.delayMs(attempt, rnd), Math.max(1, deadline - System.currentTimeMillis())), TimeUnit.MILLISECONDS);
        return;
      } catch (TimeoutException e) {
        // retry
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (ExecutionException e) {
        return;
      }
    }
  }

  /** Waits for the current connection to end and reconnects until close() or a stop reason. */
  private void supervise(Conn first) {
    Conn cn = first;
    int attempt = 0;
    try {
      while (true) {
        CompletableFuture.anyOf(cn.done, cn.leaving, stop).join();
        if (stop.isDone()) {
          cn.close(new Errors.Closed());
          finish(new Errors.Closed());
          return;
        }
        IOException cause = cn.leaving.isDone() ? cn.leavingCause() : cn.err();
        keepResumeToken(cause);
        o.listener.onDisconnected(cause);
        detach(cn);

        long wait;
        boolean fatal;
        if (cause instanceof Errors.GoAwayError) {
          GoAway g = ((Errors.GoAwayError) cause).goAway();
          if (g.getReason() == GoAway.Reason.REASON_REPLACED) {
            finish(cause); // another connection took the session over (R27)
            return;
          }
          wait = g.getReconnectDelayMs();
          fatal = false;
        } else {
          fatal = stopAfter(cause, 0);
          wait = o.backoff.afterLossMs(rnd);
        }
        int refusals = 0;
        if (isAuthRefusal(cause)) {
          refusals = 1; // the session ended because of its token (R32)
          wait = o.backoff.delayMs(0, rnd);
        }
        if (fatal || o.noReconnect) {
          finish(cause);
          return;
        }
        while (true) {
          if (sleep(wait)) {
            finish(new Errors.Closed());
            return;
          }
          String address;
          synchronized (lock) {
            address = o.addresses.get(addressIndex);
          }
          try {
            Conn next = connectOnce(address);
            cn = next;
            attempt = 0;
            break;
          } catch (IOException e) {
            if (isAuthRefusal(e)) {
              refusals++;
            }
            if (stopAfter(e, refusals)) {
              finish(e);
              return;
            }
            if (!(e instanceof Errors.ServerError)) {
              synchronized (lock) {
                addressIndex = (addressIndex + 1) % o.addresses.size();
              }
            }
            wait = o.backoff.delayMs(attempt, rnd);
            attempt++;
          } catch (RuntimeException e) {
            finish(new IOException("client: internal error: " + e, e));
            return;
          }
        }
      }
    } finally {
      if (!done.isDone()) {
        finish(new IOException("client: supervisor ended"));
      }
    }
  }

  /**
   * Keeps the resume token of a GOAWAY DRAINING or REBALANCE for the reconnect it asks for (R26,
   * R42): every handshake until one is acknowledged carries it, and so does an export meanwhile.
   * Set before the listener hears of the disconnect, so an export from onDisconnected has it. The
   * token of a reason this client does not know (UNRECOGNIZED) is not kept (R43).
   */
  private void keepResumeToken(IOException cause) {
    if (cause instanceof Errors.GoAwayError) {
      GoAway g = ((Errors.GoAwayError) cause).goAway();
      if (movesSession(g.getReason())) {
        synchronized (lock) {
          resumeToken = g.getResumeToken();
        }
      }
    }
  }

  /** The GOAWAY asks the client to resume its session elsewhere with its token (R26, R42). */
  static boolean movesSession(GoAway.Reason r) {
    return r == GoAway.Reason.REASON_DRAINING || r == GoAway.Reason.REASON_REBALANCE;
  }

  /** Sleeps ms unless close() comes first; true when it did. */
  private boolean sleep(long ms) {
    try {
      stop.get(ms, TimeUnit.MILLISECONDS);
      return true;
    } catch (TimeoutException e) {
      return false;
    } catch (InterruptedException | ExecutionException e) {
      return true;
    }
  }

  private boolean stopAfter(IOException err, int refusals) {
    return StopPolicy.stops(err, o.refreshable, o.authAttempts, refusals);
  }

  private static boolean isAuthRefusal(IOException err) {
    return StopPolicy.isAuthRefusal(err);
  }

  private void finish(IOException reason) {
    synchronized (lock) {
      if (stopReason != null) {
        return;
      }
      stopReason = reason;
      up.completeExceptionally(reason);
    }
    o.listener.onStopped(reason);
    done.complete(reason);
    shutdownExecutors();
  }

  private void shutdownExecutors() {
    timers.shutdownNow();
    io.shutdown();
  }

  /** The live connection, once there is one; fails with the stop reason. */
  private CompletableFuture<Conn> current() {
    synchronized (lock) {
      if (stopReason != null) {
        return failed(stopReason);
      }
      return cur != null ? CompletableFuture.completedFuture(cur) : up;
    }
  }

  /** Calls method on a backend service; see {@link #request(Request)}. */
  public CompletableFuture<Response> request(String service, String method, byte[] payload) {
    return request(Request.newBuilder().setService(service).setMethod(method).setPayload(ByteString.copyFrom(payload)).build());
  }

  /**
   * Sends a REQUEST and completes with its RESPONSE, whatever its code (R13): a code other than
   * OK says why the gateway has no answer. Fails with {@link Errors.ConnectionLost} when the
   * connection ended first (the backend may or may not have seen it: only the app can decide to
   * retry, R14). A request crossing a GOAWAY is resent on the next connection (R15).
   */
  public CompletableFuture<Response> request(Request req) {
    return current().thenComposeAsync(cn -> send(cn, req, 0), io);
  }

  /**
   * {@link #request(Request)} that fails with {@link Errors.Timeout} when no RESPONSE arrived
   * within timeout (waiting for a connection included), like the Go SDK's context deadline. The
   * gateway may still forward the request; set {@code Request.timeout_ms} to bound the backend.
   */
  public CompletableFuture<Response> request(Request req, java.time.Duration timeout) {
    return within(request(req), timeout.toMillis());
  }

  private CompletableFuture<Response> send(Conn cn, Request req, int resends) {
    return cn.call(Frame.newBuilder().setRequest(req)).handle((f, e) -> {
      Throwable cause = unwrap(e);
      boolean resend = cause instanceof Errors.Leaving
          || (cause == null && f.getResponse().getCode() == ErrorCode.ERROR_CODE_DRAINING && resends < MAX_RESENDS);
      if (resend) {
        // Not sent, or refused unforwarded: the same as not sent. The next connection takes it.
        return nextConn(cn).thenComposeAsync(next -> send(next, req, resends + 1), io);
      }
      if (cause != null) {
        return Client.<Response>failed(cause);
      }
      return CompletableFuture.completedFuture(f.getResponse());
    }).thenCompose(x -> x);
  }

  /** A live connection other than old (which detached itself on GOAWAY). */
  private CompletableFuture<Conn> nextConn(Conn old) {
    return current().thenCompose(cn -> cn != old ? CompletableFuture.completedFuture(cn)
        : Client.<Conn>failed(new IOException("client: internal error: a leaving connection is still current")));
  }

  /** A PING round trip. */
  public CompletableFuture<java.time.Duration> ping() {
    return current().thenComposeAsync(cn -> {
      long start = System.nanoTime();
      return cn.call(Frame.newBuilder().setPing(Ping.newBuilder().setClientTimeMs(System.currentTimeMillis())))
          .thenApply(f -> java.time.Duration.ofNanos(System.nanoTime() - start));
    }, io);
  }

  /** Writes PUSH_ACK for p; {@link ReceivedPush#ack()} refuses first what the gateway would refuse. */
  CompletableFuture<Void> writeAck(Push p) {
    return writeAsync(Frame.newBuilder().setPushAck(PushAck.newBuilder().setMessageId(p.getMessageId()).setPosition(p.getPosition())).build());
  }

  /** Writes PUSH_REPLY for p; {@link ReceivedPush#reply(byte[])} refuses first what the gateway would refuse. */
  CompletableFuture<Void> writeReply(Push p, byte[] payload) {
    return writeAsync(Frame.newBuilder().setPushReply(PushReply.newBuilder().setMessageId(p.getMessageId())
        .setPayload(ByteString.copyFrom(payload)).setPosition(p.getPosition())).build());
  }

  private CompletableFuture<Void> writeAsync(Frame f) {
    return current().thenAcceptAsync(cn -> {
      try {
        cn.write(f);
      } catch (IOException e) {
        throw new CompletionException(e);
      }
    }, io);
  }

  /** The current connection (null between connections); for the package's tests. */
  Conn currentConn() {
    synchronized (lock) {
      return cur;
    }
  }

  /** The session's id (assigned by the gateway when none was given). */
  public String sessionId() {
    synchronized (lock) {
      return sessionId;
    }
  }

  /** What to store to resume this session after the app restarts (R36). */
  public ResumeState exportState() {
    synchronized (lock) {
      return new ResumeState(sessionId, resumeFromLocked(), resumeToken);
    }
  }

  /** Completes with the stop reason once the client stopped for good ({@link Errors.Closed} after close()). */
  public CompletableFuture<IOException> stopped() {
    return done;
  }

  /** Ends the session's connection and stops reconnecting (R40). Idempotent; waits for the stop. */
  @Override
  public void close() {
    stop.complete(null);
    java.net.Socket s;
    synchronized (lock) {
      s = dialing;
    }
    if (s != null) {
      closeQuietly(s); // a connect in progress fails at once; the supervisor then sees stop
    }
    try {
      done.get(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // stopped already or stuck: nothing more to do
    }
  }

  /** Fails f with a Timeout after ms unless it completed first. */
  <T> CompletableFuture<T> within(CompletableFuture<T> f, long ms) {
    if (timers.isShutdown()) {
      return f;
    }
    try {
      java.util.concurrent.ScheduledFuture<?> t = timers.schedule(() -> f.completeExceptionally(new Errors.Timeout("no answer within " + ms + "ms")), ms, TimeUnit.MILLISECONDS);
      f.whenComplete((r, e) -> t.cancel(false));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // stopping
    }
    return f;
  }

  /** A failed future (CompletableFuture.failedFuture needs Android API 31). */
  static <T> CompletableFuture<T> failed(Throwable e) {
    CompletableFuture<T> f = new CompletableFuture<>();
    f.completeExceptionally(e);
    return f;
  }

  static Throwable unwrap(Throwable e) {
    while (e instanceof CompletionException || e instanceof ExecutionException) {
      if (e.getCause() == null) {
        break;
      }
      e = e.getCause();
    }
    return e;
  }

  /** Configures and connects a {@link Client}. */
  public static final class Builder {
    private final List<String> addresses = new ArrayList<>();
    private TokenSource tokenSource;
    private boolean refreshable;
    private String sessionId = "";
    private String deviceId = "";
    private String clientVersion = "java/0.1.0";
    private SSLSocketFactory tls;
    private String tlsServerName;
    private Listener listener = new Listener() {};
    private Backoff backoff = Backoff.DEFAULT;
    private boolean noReconnect;
    private int authAttempts = 10;
    private int dedupWindow = 1024;
    private int maxFrameBytes = 65536;
    private int handshakeTimeoutMs = 10_000;
    private ResumeState resumeState;
    private long firstSeq;

    private Builder() {}

    /**
     * A gateway address (the TCPGateway's Service); more than one are tried in turn. {@code
     * host:port} connects over TCP (TLS with the TLS options); a {@code ws://} or {@code wss://}
     * URL, path included (e.g. {@code wss://gw.example.com/tcpgw}, the gateway's {@code
     * listen.websocket}), connects over WebSocket, {@code wss://} with the TLS options or, without
     * them, the system's roots. {@link #connect()} refuses a malformed address, and a {@code ws://}
     * one when TLS options are set (they would go unused).
     */
    public Builder address(String address) {
      addresses.add(address);
      return this;
    }

    /** Several addresses, as {@link #address(String)} takes them. */
    public Builder addresses(List<String> addresses) {
      this.addresses.addAll(addresses);
      return this;
    }

    /**
     * A fixed token, for tools and tests: it cannot be refreshed, so the client stops once the
     * gateway refuses it (R35).
     */
    public Builder token(String token) {
      this.tokenSource = () -> token;
      this.refreshable = false;
      return this;
    }

    /** Asked for a token before every handshake and on every REFRESH_REQUEST (R33, R34). */
    public Builder tokenSource(TokenSource source) {
      this.tokenSource = source;
      this.refreshable = true;
      return this;
    }

    /**
     * Consecutive refusals (UNAUTHENTICATED, TOKEN_EXPIRED) after which a client with a token
     * source stops; negative: never; 0 keeps the default, 10 (as in the Go SDK).
     */
    public Builder authAttempts(int n) {
      this.authAttempts = n == 0 ? 10 : n;
      return this;
    }

    /** The session to open or resume; empty (default): the gateway assigns one. */
    public Builder sessionId(String id) {
      this.sessionId = id;
      return this;
    }

    public Builder deviceId(String id) {
      this.deviceId = id;
      return this;
    }

    public Builder clientVersion(String v) {
      this.clientVersion = v;
      return this;
    }

    /**
     * TLS with this factory (e.g. of an SSLContext trusting a private CA) for host:port and
     * wss:// addresses; the certificate must name the host.
     */
    public Builder tls(SSLSocketFactory factory) {
      this.tls = factory;
      return this;
    }

    /** TLS trusting the system's roots. */
    public Builder tls() {
      this.tls = (SSLSocketFactory) SSLSocketFactory.getDefault();
      return this;
    }

    /** TLS trusting only the CA certificates of this PEM (or DER) stream. */
    public Builder tlsTrusting(InputStream caCertificates) throws GeneralSecurityException, IOException {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      int i = 0;
      for (Certificate c : cf.generateCertificates(caCertificates)) {
        ks.setCertificateEntry("ca-" + i++, c);
      }
      if (i == 0) {
        throw new GeneralSecurityException("no CA certificate in the stream");
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(ks);
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(null, tmf.getTrustManagers(), null);
      this.tls = ctx.getSocketFactory();
      return this;
    }

    /** The name the server's certificate must carry; default the address's host. */
    public Builder tlsServerName(String name) {
      this.tlsServerName = name;
      return this;
    }

    public Builder listener(Listener l) {
      this.listener = l;
      return this;
    }

    public Builder backoff(Backoff b) {
      this.backoff = b;
      return this;
    }

    /** Stop at the first loss instead of reconnecting. */
    public Builder noReconnect(boolean v) {
      this.noReconnect = v;
      return this;
    }

    /** Recent message ids remembered to drop duplicate records; negative: off. Default 1024. */
    public Builder dedupWindow(int n) {
      this.dedupWindow = n;
      return this;
    }

    /**
     * The client's frame limit: the largest frame body accepted, and sent; sends are also capped
     * by the connection's {@code HandshakeAck.max_frame_bytes} when smaller (R4). A call whose
     * frame is above the limit fails with {@link Frames.FrameTooLargeException}, nothing is
     * written and the connection stays. Default 65536.
     */
    public Builder maxFrameBytes(int n) {
      this.maxFrameBytes = n;
      return this;
    }

    /** Bounds dial, TLS and handshake. Default 10 s. */
    public Builder handshakeTimeoutMs(int ms) {
      this.handshakeTimeoutMs = ms;
      return this;
    }

    /** Resume the session an earlier process exported (R36). */
    public Builder resumeState(ResumeState s) {
      this.resumeState = s;
      return this;
    }

    /** The seq before the first call; tests use it to cross 2⁶³ and 2⁶⁴. */
    Builder firstSeq(long seq) {
      this.firstSeq = seq;
      return this;
    }

    /**
     * Connects (blocking until the first HANDSHAKE_ACK, or failing with the first failure: R9)
     * and keeps the session connected until {@link Client#close()}.
     */
    public Client connect() throws IOException {
      if (addresses.isEmpty()) {
        throw new IllegalArgumentException("no gateway address");
      }
      if (tokenSource == null) {
        throw new IllegalArgumentException("a token or a token source is required");
      }
      for (String a : addresses) {
        Endpoint e = Endpoint.parse(a);
        if (e.webSocket && !e.secure && tls != null) {
          throw new IllegalArgumentException("address " + a + " is plaintext ws:// but TLS options are set: use wss://");
        }
      }
      Builder copy = copy();
      Client c = new Client(copy);
      c.connectFirst();
      return c;
    }

    private Builder copy() {
      Builder b = new Builder();
      b.addresses.addAll(Collections.unmodifiableList(addresses));
      b.tokenSource = tokenSource;
      b.refreshable = refreshable;
      b.sessionId = sessionId == null ? "" : sessionId;
      b.deviceId = deviceId == null ? "" : deviceId;
      b.clientVersion = clientVersion == null ? "" : clientVersion;
      b.tls = tls;
      b.tlsServerName = tlsServerName;
      b.listener = listener;
      b.backoff = backoff;
      b.noReconnect = noReconnect;
      b.authAttempts = authAttempts;
      b.dedupWindow = dedupWindow;
      b.maxFrameBytes = maxFrameBytes;
      b.handshakeTimeoutMs = handshakeTimeoutMs;
      b.resumeState = resumeState;
      b.firstSeq = firstSeq;
      return b;
    }
  }
}
