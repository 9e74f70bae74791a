package io.tcpgateway.driver;

import com.google.protobuf.ByteString;
import io.tcpgateway.client.Backoff;
import io.tcpgateway.client.Client;
import io.tcpgateway.client.Errors;
import io.tcpgateway.client.Frames;
import io.tcpgateway.client.Listener;
import io.tcpgateway.client.ReceivedPush;
import io.tcpgateway.client.ResumeState;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import tcpgateway.v1.Protocol.Error;
import tcpgateway.v1.Protocol.ErrorCode;
import tcpgateway.v1.Protocol.HandshakeAck;
import tcpgateway.v1.Protocol.Position;
import tcpgateway.v1.Protocol.Push;
import tcpgateway.v1.Protocol.Request;
import tcpgateway.v1.Protocol.Response;

/**
 * The conformance driver of the Java client SDK (test/conformance/DRIVER.md): one JSON command
 * per line on stdin, one JSON event per line on stdout. A thin adapter: every state change, push
 * and error it reports comes from the SDK's listener and return values.
 */
public final class Main {
  private static final long DEFAULT_DEADLINE_MS = 30_000;

  private final PrintStream out;
  private final Map<String, Sdk> clients = new ConcurrentHashMap<>();
  private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "driver-command");
    t.setDaemon(true);
    return t;
  });

  /** One SDK client and what the driver keeps for it. */
  private static final class Sdk {
    volatile Client client;
    volatile String token;
    int fetches;
    final Map<String, ReceivedPush> pushes = new ConcurrentHashMap<>();
  }

  private Main(PrintStream out) {
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, "UTF-8");
    Main d = new Main(out);
    Map<String, Object> ready = new LinkedHashMap<>();
    ready.put("event", "ready");
    ready.put("driver", "java");
    List<Object> caps = new ArrayList<>();
    caps.add("positions");
    caps.add("websocket"); // the client connects to ws:// and wss:// addresses
    ready.put("capabilities", caps);
    d.emit(ready);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    List<CompletableFuture<Void>> running = new ArrayList<>();
    for (String line; (line = in.readLine()) != null; ) {
      if (line.trim().isEmpty()) {
        continue;
      }
      String l = line;
      // Commands run concurrently: a request waiting for its response must not hold up the next.
      running.add(CompletableFuture.runAsync(() -> d.run(l), d.pool));
      running.removeIf(CompletableFuture::isDone);
    }
    try {
      CompletableFuture.allOf(running.toArray(new CompletableFuture<?>[0])).get(3, TimeUnit.SECONDS);
    } catch (TimeoutException | ExecutionException e) {
      // stdin ended: commands still waiting are abandoned
    }
    for (Sdk s : d.clients.values()) {
      if (s.client != null) {
        CompletableFuture.runAsync(s.client::close, d.pool);
      }
    }
    for (Sdk s : d.clients.values()) {
      if (s.client != null) {
        try {
          s.client.stopped().get(1500, TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
          // exiting anyway
        }
      }
    }
    out.flush();
    System.exit(0);
  }

  private synchronized void emit(Map<String, Object> e) {
    out.print(Json.write(e));
    out.print('\n');
    out.flush();
  }

  private Map<String, Object> event(String kind, String client) {
    Map<String, Object> e = new LinkedHashMap<>();
    e.put("event", kind);
    e.put("client", client);
    return e;
  }

  @SuppressWarnings("unchecked")
  private void run(String line) {
    Map<String, Object> cmd;
    try {
      cmd = (Map<String, Object>) Json.parse(line);
    } catch (RuntimeException e) {
      Map<String, Object> res = new LinkedHashMap<>();
      res.put("event", "result");
      res.put("error", failure("bad_command", e.toString()));
      emit(res);
      return;
    }
    String name = str(cmd, "client");
    if (name.isEmpty()) {
      name = "c";
    }
    Map<String, Object> res = event("result", name);
    res.put("id", num(cmd, "id"));
    long deadline = num(cmd, "deadline_ms") > 0 ? num(cmd, "deadline_ms") : DEFAULT_DEADLINE_MS;
    try {
      String op = str(cmd, "op");
      if (op.equals("connect")) {
        res.put("session_id", connect(name, cmd, deadline));
      } else {
        Sdk sdk = clients.get(name);
        if (sdk == null || sdk.client == null) {
          throw new BadCommand("no client " + name);
        }
        Client c = sdk.client;
        switch (op) {
          case "request": {
            Request.Builder r = Request.newBuilder().setService(str(cmd, "service")).setMethod(str(cmd, "method"))
                .setPayload(ByteString.copyFrom(bytes(cmd, "payload"))).setTimeoutMs((int) num(cmd, "timeout_ms"));
            Object h = cmd.get("headers");
            if (h instanceof Map) {
              for (Map.Entry<String, Object> e : ((Map<String, Object>) h).entrySet()) {
                r.putHeaders(e.getKey(), String.valueOf(e.getValue()));
              }
            }
            Response resp = await(c.request(r.build()), deadline);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("code", code(resp.getCode()));
            m.put("status", resp.getStatus());
            m.put("payload", Base64.getEncoder().encodeToString(resp.getPayload().toByteArray()));
            m.put("headers", new TreeMap<>(resp.getHeadersMap()));
            m.put("message", resp.getMessage());
            res.put("response", m);
            break;
          }
          case "ping":
            res.put("rtt_ms", await(c.ping(), deadline).toNanos() / 1e6);
            break;
          case "ack":
          case "reply": {
            ReceivedPush p = sdk.pushes.get(str(cmd, "message_id"));
            if (p == null) {
              throw new BadCommand("no push delivered with message id " + str(cmd, "message_id"));
            }
            await(op.equals("ack") ? p.ack() : p.reply(bytes(cmd, "payload")), deadline);
            break;
          }
          case "set_token":
            sdk.token = str(cmd, "token");
            break;
          case "session_id":
            res.put("session_id", c.sessionId());
            break;
          case "export_positions":
            res.put("positions", exported(c.exportState()));
            break;
          case "close":
            c.close();
            break;
          default:
            res.put("error", failure("unsupported", "unknown op " + op));
        }
      }
    } catch (BadCommand e) {
      res.put("error", failure("bad_command", e.getMessage()));
    } catch (TimeoutException e) {
      res.put("error", failure("timeout", "deadline_ms passed"));
    } catch (Throwable e) {
      res.put("error", failure(e));
    }
    res.put("ok", !res.containsKey("error"));
    emit(res);
  }

  @SuppressWarnings("unchecked")
  private String connect(String name, Map<String, Object> cmd, long deadline) throws Throwable {
    if (clients.containsKey(name)) {
      throw new BadCommand("client " + name + " exists");
    }
    Sdk sdk = new Sdk();
    sdk.token = str(cmd, "token");
    clients.put(name, sdk);
    Client.Builder b = Client.builder().address(str(cmd, "address"))
        .sessionId(str(cmd, "session_id")).deviceId(str(cmd, "device_id")).clientVersion(str(cmd, "client_version"))
        .noReconnect(bool(cmd, "no_reconnect"))
        .handshakeTimeoutMs((int) Math.min(deadline, 10_000));
    if (num(cmd, "dedup_window") != 0) {
      b.dedupWindow((int) num(cmd, "dedup_window"));
    }
    if (num(cmd, "max_frame_bytes") != 0) {
      b.maxFrameBytes((int) num(cmd, "max_frame_bytes"));
    }
    if (bool(cmd, "refreshable")) {
      b.tokenSource(() -> {
        int n;
        synchronized (sdk) {
          n = ++sdk.fetches;
        }
        Map<String, Object> e = event("token_fetched", name);
        e.put("n", n);
        emit(e);
        return sdk.token;
      });
    } else {
      b.token(sdk.token);
    }
    Object rc = cmd.get("reconnect");
    if (rc instanceof Map) {
      Map<String, Object> r = (Map<String, Object>) rc;
      b.backoff(new Backoff(num(r, "initial_ms"), num(r, "max_ms"), num(r, "lost_spread_ms")));
    }
    Object tls = cmd.get("tls");
    if (tls instanceof Map) {
      Map<String, Object> t = (Map<String, Object>) tls;
      if (str(t, "ca_pem").isEmpty()) {
        b.tls();
      } else {
        b.tlsTrusting(new ByteArrayInputStream(str(t, "ca_pem").getBytes(StandardCharsets.UTF_8)));
      }
      if (!str(t, "server_name").isEmpty()) {
        b.tlsServerName(str(t, "server_name"));
      }
    }
    Object resume = cmd.get("resume");
    if (resume instanceof Map) {
      Map<String, Object> r = (Map<String, Object>) resume;
      Map<Integer, Long> pos = new TreeMap<>();
      Object ps = r.get("positions");
      if (ps instanceof List) {
        for (Object o : (List<Object>) ps) {
          Map<String, Object> p = (Map<String, Object>) o;
          pos.put((int) num(p, "partition"), num(p, "offset"));
        }
      }
      b.resumeState(new ResumeState(str(r, "session_id"), pos, str(r, "resume_token")));
    }
    b.listener(new Listener() {
      @Override
      public void onPush(ReceivedPush p) {
        sdk.pushes.put(p.messageId(), p);
        Map<String, Object> e = event("push", name);
        e.put("push", push(p.push()));
        emit(e);
      }

      @Override
      public void onConnected(HandshakeAck ack) {
        Map<String, Object> e = event("state", name);
        e.put("state", "connected");
        e.put("ack", ack(ack));
        emit(e);
      }

      @Override
      public void onDisconnected(IOException cause) {
        Map<String, Object> e = event("state", name);
        e.put("state", "disconnected");
        e.put("cause", failure(cause));
        emit(e);
      }

      @Override
      public void onStopped(IOException reason) {
        Map<String, Object> e = event("state", name);
        e.put("state", "stopped");
        e.put("cause", failure(reason));
        emit(e);
      }

      @Override
      public void onRefused(Error err) {
        Map<String, Object> e = event("error", name);
        e.put("code", code(err.getCode()));
        e.put("message", err.getMessage());
        emit(e);
      }
    });
    CompletableFuture<Client> connecting = CompletableFuture.supplyAsync(() -> {
      try {
        return b.connect();
      } catch (IOException e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    }, pool);
    try {
      sdk.client = await(connecting, deadline);
    } catch (Throwable e) {
      clients.remove(name);
      throw e;
    }
    return sdk.client.sessionId();
  }

  private static <T> T await(CompletableFuture<T> f, long ms) throws Throwable {
    try {
      return f.get(ms, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      while (c instanceof java.util.concurrent.CompletionException && c.getCause() != null) {
        c = c.getCause();
      }
      throw c;
    }
  }

  private static final class BadCommand extends Exception {
    private static final long serialVersionUID = 1L;

    BadCommand(String m) {
      super(m);
    }
  }

  private static Map<String, Object> failure(String kind, String message) {
    Map<String, Object> f = new LinkedHashMap<>();
    f.put("kind", kind);
    f.put("message", message);
    return f;
  }

  /** Classifies an SDK failure into the protocol's kinds. */
  private static Map<String, Object> failure(Throwable e) {
    Map<String, Object> f = new LinkedHashMap<>();
    f.put("message", String.valueOf(e.getMessage()));
    if (e instanceof Errors.ServerError) {
      Errors.ServerError se = (Errors.ServerError) e;
      f.put("kind", "server_error");
      f.put("code", code(se.code()));
      f.put("message", se.gatewayMessage());
    } else if (e instanceof Errors.GoAwayError) {
      Errors.GoAwayError g = (Errors.GoAwayError) e;
      f.put("kind", "goaway");
      f.put("reason", g.reason().name().replaceFirst("^REASON_", ""));
      f.put("reconnect_delay_ms", g.goAway().getReconnectDelayMs());
    } else if (e instanceof Frames.FrameTooLargeException) {
      f.put("kind", "frame_too_large");
    } else if (e instanceof Errors.NotRequested) {
      f.put("kind", "not_requested");
    } else if (e instanceof Errors.AlreadyAnswered) {
      f.put("kind", "already_answered");
    } else if (e instanceof Errors.ConnectionLost) {
      f.put("kind", "connection_lost");
    } else if (e instanceof Errors.Closed) {
      f.put("kind", "closed");
    } else if (e instanceof Errors.Timeout) {
      f.put("kind", "timeout");
    } else if (e instanceof Errors.TokenSourceFailed) {
      f.put("kind", "token_source");
    } else {
      f.put("kind", "transport");
    }
    return f;
  }

  private static String code(ErrorCode c) {
    return c.name().replaceFirst("^ERROR_CODE_", "");
  }

  private static Map<String, Object> ack(HandshakeAck a) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("protocol_version", a.getProtocolVersion());
    m.put("session_id", a.getSessionId());
    m.put("user_id", a.getUserId());
    m.put("server_id", a.getServerId());
    m.put("heartbeat_interval_ms", a.getHeartbeatIntervalMs());
    m.put("idle_timeout_ms", a.getIdleTimeoutMs());
    m.put("max_frame_bytes", a.getMaxFrameBytes());
    m.put("token_expires_at_ms", a.getTokenExpiresAtMs());
    m.put("positions", positions(a.getPositionsList()));
    if (a.hasResume()) {
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("status", a.getResume().getStatus().name().replaceFirst("^STATUS_", ""));
      r.put("not_recovered", positions(a.getResume().getNotRecoveredList()));
      r.put("rejected", positions(a.getResume().getRejectedList()));
      m.put("resume", r);
    }
    return m;
  }

  private static List<Object> positions(List<Position> ps) {
    List<Object> out = new ArrayList<>();
    for (Position p : ps) {
      out.add(position(p.getPartition(), p.getOffset()));
    }
    return out;
  }

  private static Map<String, Object> position(int partition, long offset) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("partition", partition);
    m.put("offset", offset);
    return m;
  }

  private static Map<String, Object> exported(ResumeState s) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("session_id", s.sessionId());
    List<Object> ps = new ArrayList<>();
    for (Map.Entry<Integer, Long> e : s.positions().entrySet()) {
      ps.add(position(e.getKey(), e.getValue()));
    }
    m.put("positions", ps);
    m.put("resume_token", s.resumeToken());
    return m;
  }

  private static Map<String, Object> push(Push p) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("message_id", p.getMessageId());
    m.put("payload", Base64.getEncoder().encodeToString(p.getPayload().toByteArray()));
    if (p.hasPosition()) {
      m.put("position", position(p.getPosition().getPartition(), p.getPosition().getOffset()));
    }
    m.put("ack_required", p.getAckRequired());
    m.put("reply_expected", p.getReplyExpected());
    m.put("expires_at_ms", p.getExpiresAtMs());
    m.put("created_at_ms", p.getCreatedAtMs());
    m.put("correlation_id", p.getCorrelationId());
    return m;
  }

  private static String str(Map<String, Object> m, String k) {
    Object v = m.get(k);
    return v == null ? "" : v.toString();
  }

  private static long num(Map<String, Object> m, String k) {
    Object v = m.get(k);
    return v instanceof Number ? ((Number) v).longValue() : 0;
  }

  private static boolean bool(Map<String, Object> m, String k) {
    return Boolean.TRUE.equals(m.get(k));
  }

  private static byte[] bytes(Map<String, Object> m, String k) {
    String v = str(m, k);
    return v.isEmpty() ? new byte[0] : Base64.getDecoder().decode(v);
  }
}
