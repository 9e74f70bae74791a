package io.tcpgateway.client;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.GoAway;
import tcpgateway.v1.Protocol.HandshakeAck;
import tcpgateway.v1.Protocol.Ping;
import tcpgateway.v1.Protocol.Push;
import tcpgateway.v1.Protocol.RefreshRequest;

/**
 * One connection (TCP, TLS, or WebSocket over either: its {@link FrameTransport}) after a
 * successful handshake. Its reader thread owns the read side; writes are serialised by {@code
 * wlock}. A port of the Go SDK's conn.
 */
final class Conn {
  /** What the client does with the frames a connection reads. */
  interface Handler {
    void push(Conn c, Push p);

    /** Called on GOAWAY under the connection's lock, before any call can see it leaving. */
    void leave(Conn c);

    void refused(tcpgateway.v1.Protocol.Error e);

    /** Runs on a thread of its own, one at a time per connection. */
    void refresh(Conn c, RefreshRequest r);
  }

  final HandshakeAck ack;
  final String address;
  private final FrameTransport transport;
  /** The client's own limit: frames read, and the handshake sent before the ack. */
  private final int max;
  /** Frames sent after the handshake: the smaller of max and the ack's max_frame_bytes (R4). */
  private final int sendMax;
  private final Handler handler;
  private final ScheduledExecutorService timers;
  private final AtomicBoolean refreshing = new AtomicBoolean();

  private final Object wlock = new Object();
  private final Object lock = new Object(); // guards pending, seq, err, goaway, werr
  private final Map<Long, CompletableFuture<Frame>> pending = new HashMap<>();
  private long seq;
  private IOException err;
  private GoAway goaway;
  /** The first failed write: nothing more is written and the reader decides the cause (R37). */
  private IOException werr;

  /**
   * How long the reader goes on after a write failed, looking for the fatal ERROR that says why
   * (the gateway lingers as long after its last frame; R37).
   */
  static final long READ_AFTER_WRITE_FAILURE_MS = 2000;

  /** Completed on GOAWAY: no new calls go out; the connection stays until its calls are answered. */
  final CompletableFuture<Void> leaving = new CompletableFuture<>();
  /** Completed when the connection ended; {@link #err()} says why. */
  final CompletableFuture<Void> done = new CompletableFuture<>();

  private Conn(FrameTransport transport, HandshakeAck ack, String address, int max, long firstSeq, Handler handler, ScheduledExecutorService timers) {
    this.transport = transport;
    this.ack = ack;
    this.address = address;
    this.max = max;
    this.sendMax = sendLimit(max, ack.getMaxFrameBytes());
    this.seq = firstSeq;
    this.handler = handler;
    this.timers = timers;
  }

  /** Masks of the WebSocket frames sent and upgrade keys (RFC 6455 5.3, 4.1). */
  private static final SecureRandom RANDOM = new SecureRandom();

  /**
   * Connects, runs TLS, the WebSocket upgrade for a ws:// or wss:// address, and the handshake
   * within {@code timeoutMs}, then starts reading and heartbeats. {@code tls} applies to host:port
   * and to wss:// (null there: the system's roots).
   */
  static Conn dial(String address, SSLSocketFactory tls, String tlsServerName, int timeoutMs, int max, long firstSeq, Frame handshake, Handler handler, ScheduledExecutorService timers, ThreadGroupNamer names, java.util.function.Consumer<Socket> dialing) throws IOException {
    Endpoint e = Endpoint.parse(address);
    if (e.webSocket && e.secure && tls == null) {
      tls = (SSLSocketFactory) SSLSocketFactory.getDefault();
    }
    boolean secure = e.webSocket ? e.secure : tls != null;
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    Socket s = new Socket();
    dialing.accept(s); // so that close() can abort a dial or handshake in progress
    try {
      s.setTcpNoDelay(true);
      s.connect(new InetSocketAddress(e.host, e.port), timeoutMs);
      if (secure) {
        String name = tlsServerName == null || tlsServerName.isEmpty() ? e.host : tlsServerName;
        SSLSocket ts = (SSLSocket) tls.createSocket(s, name, e.port, true);
        SSLParameters params = ts.getSSLParameters();
        // Verify that the certificate names the server (SSLSocket does not by default).
        params.setEndpointIdentificationAlgorithm("HTTPS");
        ts.setSSLParameters(params);
        ts.setSoTimeout(remaining(deadline));
        try {
          ts.startHandshake();
        } catch (IOException ex) {
          throw new IOException("while running the TLS handshake with " + address + ": " + ex.getMessage(), ex);
        }
        s = ts;
      }
      s.setSoTimeout(remaining(deadline));
      DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 16 * 1024));
      OutputStream out = new BufferedOutputStream(s.getOutputStream(), 16 * 1024);
      FrameTransport t;
      if (e.webSocket) {
        try {
          WebSocketUpgrade.run(e, in, out, RANDOM);
        } catch (IOException ex) {
          throw new IOException("while upgrading to WebSocket at " + address + ": " + ex.getMessage(), ex);
        }
        s.setSoTimeout(remaining(deadline));
        t = new WebSocketTransport(s, in, out, RANDOM);
      } else {
        t = new TcpTransport(s, in, out);
      }
      t.write(Frames.encode(handshake, max));
      Frame f;
      try {
        f = t.read(max);
      } catch (IOException ex) {
        throw new IOException("while waiting for the handshake ack: " + ex.getMessage(), ex);
      }
      switch (f.getBodyCase()) {
        case HANDSHAKE_ACK:
          break;
        case ERROR:
          throw new Errors.ServerError(f.getError().getCode(), f.getError().getMessage());
        default:
          throw new Frames.ProtocolException("expected HANDSHAKE_ACK, got " + f.getBodyCase());
      }
      s.setSoTimeout(0);
      Conn c = new Conn(t, f.getHandshakeAck(), address, max, firstSeq, handler, timers);
      Thread reader = new Thread(c::readLoop, names.name("reader"));
      reader.setDaemon(true);
      reader.start();
      c.startHeartbeat(f.getHandshakeAck().getHeartbeatIntervalMs());
      return c;
    } catch (IOException | RuntimeException ex) {
      closeQuietly(s);
      throw ex;
    }
  }

  /** Names the client's threads. */
  interface ThreadGroupNamer {
    String name(String role);
  }

  private static int remaining(long deadline) throws IOException {
    long ms = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    if (ms <= 0) {
      throw new Errors.Timeout("handshake timeout");
    }
    return (int) Math.min(ms, Integer.MAX_VALUE);
  }

  /**
   * The largest frame body sent on a connection: the client's own limit, or the gateway's when
   * the ack names a smaller one ({@code ack} is the unsigned max_frame_bytes; 0 names none). A
   * frame above the gateway's limit would make it close the connection with FRAME_TOO_LARGE.
   */
  static int sendLimit(int own, int ack) {
    long a = Integer.toUnsignedLong(ack);
    return a > 0 && a < own ? (int) a : own;
  }

  /**
   * Sends one frame. A frame above the send limit fails with {@link
   * Frames.FrameTooLargeException} before anything is written: the connection stays (R4).
   */
  void write(Frame f) throws IOException {
    byte[] b = Frames.encode(f, sendMax);
    synchronized (wlock) {
      IOException failed = writeError();
      if (failed != null) {
        throw failed; // nothing more is written after a failed write (R37)
      }
      try {
        transport.write(b);
      } catch (IOException e) {
        throw writeFailed(e);
      }
    }
  }

  /**
   * Remembers the first failed write and gives the reader {@link #READ_AFTER_WRITE_FAILURE_MS}
   * to reach EOF or a read error: a reset can overtake the gateway's fatal ERROR, and that ERROR,
   * not the reset, is why the connection ends (R37).
   */
  private IOException writeFailed(IOException e) {
    synchronized (lock) {
      if (werr != null || err != null) {
        return werr != null ? werr : e;
      }
      werr = e;
    }
    try {
      timers.schedule(() -> close(e), READ_AFTER_WRITE_FAILURE_MS, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException stopping) {
      close(e); // the client is stopping: no reader to wait for
    }
    return e;
  }

  /** The first failed write, or null. */
  IOException writeError() {
    synchronized (lock) {
      return werr;
    }
  }

  /**
   * Sends a frame with a fresh seq and returns the frame answering it. Fails with {@link
   * Errors.Leaving} when the connection was told to go away (nothing was sent), {@link
   * Errors.ConnectionLost} when it ends first.
   */
  CompletableFuture<Frame> call(Frame.Builder f) {
    CompletableFuture<Frame> result = new CompletableFuture<>();
    long s;
    synchronized (lock) {
      if (err != null) {
        result.completeExceptionally(new Errors.ConnectionLost(err));
        return result;
      }
      if (goaway != null) {
        result.completeExceptionally(new Errors.Leaving());
        return result;
      }
      // seq is unsigned 64-bit on the wire; a Java long wraps the same way and keys the map.
      s = ++seq;
      pending.put(s, result);
    }
    result.whenComplete((r, e) -> {
      synchronized (lock) {
        pending.remove(s);
      }
    });
    try {
      write(f.setSeq(s).build());
    } catch (Frames.FrameTooLargeException e) {
      result.completeExceptionally(e); // nothing was sent: the connection stays
    } catch (IOException e) {
      // The write failed: this call is lost like every call in flight, with ConnectionLost, once
      // the reader has decided the cause (R37); close() completes it.
    }
    return result;
  }

  private void readLoop() {
    while (true) {
      Frame f;
      try {
        f = transport.read(max);
      } catch (IOException e) {
        // After a failed write the write error is the cause, unless a fatal ERROR came first.
        IOException failed = writeError();
        close(failed != null ? failed : e);
        return;
      }
      switch (f.getBodyCase()) {
        case RESPONSE:
        case PONG:
        case REFRESH_ACK: {
          CompletableFuture<Frame> ch;
          boolean last;
          GoAway g;
          synchronized (lock) {
            ch = pending.remove(f.getSeq());
            last = goaway != null && pending.isEmpty();
            g = goaway;
          }
          if (ch != null) {
            ch.complete(f);
          }
          if (last) {
            close(new Errors.GoAwayError(g));
            return;
          }
          break;
        }
        case PUSH: {
          boolean isLeaving;
          synchronized (lock) {
            isLeaving = goaway != null;
          }
          // After GOAWAY the gateway queues no pushes; any that raced with it are replayed on the
          // next connection from the positions the client resumes with (R20).
          if (!isLeaving) {
            handler.push(this, f.getPush());
          }
          break;
        }
        case REFRESH_REQUEST:
          if (refreshing.compareAndSet(false, true)) {
            RefreshRequest r = f.getRefreshRequest();
            Thread t = new Thread(() -> {
              try {
                handler.refresh(this, r);
              } finally {
                refreshing.set(false);
              }
            }, "tcpgw-refresh");
            t.setDaemon(true);
            t.start();
          }
          break;
        case GOAWAY: {
          boolean first;
          boolean idle;
          synchronized (lock) {
            first = goaway == null;
            goaway = f.getGoaway();
            idle = pending.isEmpty();
            if (first) {
              handler.leave(this); // under lock: no call sees Leaving while this is still current
            }
          }
          if (first) {
            leaving.complete(null);
          }
          if (idle) {
            close(new Errors.GoAwayError(f.getGoaway()));
            return;
          }
          break;
        }
        case ERROR:
          if (!f.getError().getFatal()) {
            handler.refused(f.getError());
            break;
          }
          // The last frame of the connection (R37): write nothing more, end with it as the cause.
          close(new Errors.ServerError(f.getError().getCode(), f.getError().getMessage()));
          return;
        default:
          // A frame only a client may send: the gateway never does; ignore it.
          break;
      }
    }
  }

  private volatile ScheduledFuture<?> heartbeat;

  /** PINGs at the interval the gateway asked for (R10); a PONG missing for an interval ends the connection. */
  private void startHeartbeat(long everyMs) {
    if (everyMs <= 0) {
      return;
    }
    heartbeat = timers.scheduleAtFixedRate(() -> {
      CompletableFuture<Frame> pong = call(Frame.newBuilder().setPing(Ping.newBuilder().setClientTimeMs(System.currentTimeMillis())));
      ScheduledFuture<?> timeout = timers.schedule(() -> {
        // After a failed write the reader decides the cause (R37).
        if (pong.completeExceptionally(new Errors.Timeout("no PONG within " + everyMs + "ms")) && writeError() == null) {
          close(new IOException("heartbeat: no PONG within " + everyMs + "ms"));
        }
      }, everyMs, TimeUnit.MILLISECONDS);
      pong.whenComplete((r, e) -> timeout.cancel(false));
    }, everyMs, everyMs, TimeUnit.MILLISECONDS);
  }

  /** Ends the connection once, remembering the first cause; calls in flight fail with ConnectionLost. */
  void close(IOException cause) {
    List<CompletableFuture<Frame>> calls;
    synchronized (lock) {
      if (err != null) {
        return;
      }
      err = cause;
      calls = new ArrayList<>(pending.values());
      pending.clear();
    }
    if (heartbeat != null) {
      heartbeat.cancel(false);
    }
    transport.close();
    for (CompletableFuture<Frame> c : calls) {
      c.completeExceptionally(new Errors.ConnectionLost(cause));
    }
    done.complete(null);
  }

  /** The GOAWAY that made the connection leave, or why it ended. */
  IOException leavingCause() {
    synchronized (lock) {
      if (goaway != null) {
        return new Errors.GoAwayError(goaway);
      }
      return err;
    }
  }

  IOException err() {
    synchronized (lock) {
      return err;
    }
  }

  static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing: nothing to do
    }
  }
}
