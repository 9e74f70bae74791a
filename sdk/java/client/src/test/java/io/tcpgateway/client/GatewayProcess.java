package io.tcpgateway.client;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A real gateway process (cmd/gateway, built with the go on PATH) on loopback ports, with an HS256
 * key, an echo backend (route "echo") and short heartbeats (400 ms, idle timeout 1.2 s), so every
 * test exercises the SDK's heartbeat; optionally a WebSocket listener ({@link #webSocket}).
 * Stopped by close().
 */
public final class GatewayProcess implements AutoCloseable {
  static final String ISSUER = "tcpgw-java-sdk-test";
  static final String AUDIENCE = "tcpgw-java-sdk-clients";
  static final byte[] SECRET = "java-sdk-test-hs256-secret-0123456789".getBytes(StandardCharsets.UTF_8);

  private static Path binary;

  public final String clientAddr;
  /** The WebSocket listener's URL (ws:// or wss://, path /tcpgw), or null when it is off. */
  public final String webSocketUrl;
  /** The PEM of the self-signed certificate of a wss:// listener (names 127.0.0.1 and localhost), or null. */
  public final String caPem;
  final String adminAddr;
  final Path dir;
  final Path log;
  private final Process proc;
  private final HttpServer backend;

  /** Builds cmd/gateway once per test JVM into target/. */
  static synchronized Path build() throws IOException, InterruptedException {
    if (binary != null) {
      return binary;
    }
    Path root = RepoRoot.get();
    Path out = Path.of("target", "gateway-bin", "gateway").toAbsolutePath();
    Files.createDirectories(out.getParent());
    Process p = new ProcessBuilder("go", "build", "-o", out.toString(), "./cmd/gateway")
        .directory(root.toFile()).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IOException("go build ./cmd/gateway failed:\n" + output);
    }
    binary = out;
    return out;
  }

  GatewayProcess() throws Exception {
    this(null, null, null);
  }

  /** A gateway reading downlink records from (and writing receipts to) the given broker and topics. */
  public GatewayProcess(String brokers, String downlinkTopic, String receiptsTopic) throws Exception {
    this(brokers, downlinkTopic, receiptsTopic, null);
  }

  /** The same, also publishing session events to eventsTopic (when not null). */
  public GatewayProcess(String brokers, String downlinkTopic, String receiptsTopic, String eventsTopic) throws Exception {
    this(brokers, downlinkTopic, receiptsTopic, eventsTopic, WebSocket.OFF);
  }

  /** Whether the gateway also serves listen.websocket, and how. */
  enum WebSocket { OFF, PLAIN, TLS }

  /** A gateway without Kafka that also serves WebSocket: ws://, or wss:// with a self-signed certificate. */
  static GatewayProcess webSocket(WebSocket mode) throws Exception {
    return new GatewayProcess(null, null, null, null, mode);
  }

  private GatewayProcess(String brokers, String downlinkTopic, String receiptsTopic, String eventsTopic, WebSocket ws) throws Exception {
    Path bin = build();
    dir = Files.createTempDirectory("tcpgw-java-gw");
    Path key = dir.resolve("hs256.secret");
    Files.write(key, SECRET);
    backend = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    backend.createContext("/", ex -> {
      byte[] body;
      try (InputStream in = ex.getRequestBody()) {
        body = in.readAllBytes();
      }
      ex.getResponseHeaders().add("X-Tcpgw-Meta-Method", ex.getRequestURI().getPath());
      ex.sendResponseHeaders(200, body.length == 0 ? -1 : body.length);
      try (OutputStream out = ex.getResponseBody()) {
        out.write(body);
      }
    });
    backend.start();
    int clientPort = freePort();
    int adminPort = freePort();
    for (int i = 0; i < 10 && adminPort == clientPort; i++) {
      adminPort = freePort(); // the kernel may hand out the port it just freed again
    }
    clientAddr = "127.0.0.1:" + clientPort;
    adminAddr = "127.0.0.1:" + adminPort;
    log = dir.resolve("gateway.log");
    String wsListen = "";
    if (ws != WebSocket.OFF) {
      int wsPort = freePort();
      for (int i = 0; i < 10 && (wsPort == clientPort || wsPort == adminPort); i++) {
        wsPort = freePort();
      }
      wsListen = "  websocket:\n    address: \"127.0.0.1:" + wsPort + "\"\n";
      if (ws == WebSocket.TLS) {
        selfSignedCert(dir);
        wsListen += "    tls:\n      certFile: " + dir.resolve("tls.crt") + "\n      keyFile: " + dir.resolve("tls.key") + "\n";
      }
      webSocketUrl = (ws == WebSocket.TLS ? "wss" : "ws") + "://127.0.0.1:" + wsPort + "/tcpgw";
    } else {
      webSocketUrl = null;
    }
    caPem = ws == WebSocket.TLS ? Files.readString(dir.resolve("tls.crt")) : null;
    String cfg = String.join("\n",
        "serverID: java-sdk-test",
        "listen:",
        "  clients: \"" + clientAddr + "\"",
        "  admin: \"" + adminAddr + "\"",
        "  control: " + dir.resolve("ctl.sock"),
        wsListen + "limits:",
        "  heartbeatInterval: 400ms",
        "  idleTimeout: 1200ms",
        "  requestsPerSecond: 1000",
        "  requestBurst: 1000",
        "auth:",
        "  jwt:",
        "    hs256SecretFile: " + key,
        "    issuer: " + ISSUER,
        "    audience: " + AUDIENCE,
        "routes:",
        "  - service: echo",
        "    url: http://127.0.0.1:" + backend.getAddress().getPort() + "/rpc",
        "    timeout: 5s",
        "logging:",
        "  level: info",
        "  format: json",
        "");
    if (brokers != null) {
      cfg += String.join("\n",
          "kafka:",
          "  brokers: [\"" + brokers + "\"]",
          "  downlinkTopic: " + downlinkTopic,
          "  receiptsTopic: " + receiptsTopic,
          "");
      if (eventsTopic != null) {
        cfg += "  eventsTopic: " + eventsTopic + "\n";
      }
    }
    Path cfgFile = dir.resolve("gateway.yaml");
    Files.writeString(cfgFile, cfg);
    proc = new ProcessBuilder(bin.toString(), "-config", cfgFile.toString())
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    waitReady();
  }

  private void waitReady() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      if (!proc.isAlive()) {
        throw new IOException("gateway exited: " + Files.readString(log));
      }
      try {
        HttpURLConnection c = (HttpURLConnection) new URL("http://" + adminAddr + "/readyz").openConnection();
        c.setConnectTimeout(500);
        c.setReadTimeout(500);
        if (c.getResponseCode() == 200) {
          return;
        }
      } catch (IOException notYet) {
        // not listening yet
      }
      Thread.sleep(50); // polling readiness: the process offers no event to await
    }
    throw new IOException("gateway not ready within 60s: " + Files.readString(log));
  }

  /** A self-signed EC certificate for 127.0.0.1 and localhost: dir/tls.crt, dir/tls.key (openssl). */
  static void selfSignedCert(Path dir) throws IOException, InterruptedException {
    Process p = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", "/CN=tcpgateway-test", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", dir.resolve("tls.key").toString(), "-out", dir.resolve("tls.crt").toString())
        .redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(1, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IOException("openssl req failed:\n" + output);
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** An HS256 JWT for user, valid for ttlSeconds (exp is required by the gateway). */
  public static String token(String user, long ttlSeconds) throws Exception {
    Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
    String header = b64.encodeToString("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8));
    long exp = System.currentTimeMillis() / 1000 + ttlSeconds;
    String claims = b64.encodeToString(("{\"sub\":\"" + user + "\",\"iss\":\"" + ISSUER + "\",\"aud\":\"" + AUDIENCE
        + "\",\"exp\":" + exp + "}").getBytes(StandardCharsets.UTF_8));
    Mac mac = Mac.getInstance("HmacSHA256");
    mac.init(new SecretKeySpec(SECRET, "HmacSHA256"));
    String sig = b64.encodeToString(mac.doFinal((header + "." + claims).getBytes(StandardCharsets.UTF_8)));
    return header + "." + claims + "." + sig;
  }

  @Override
  public void close() throws Exception {
    proc.destroy();
    if (!proc.waitFor(10, TimeUnit.SECONDS)) {
      proc.destroyForcibly();
    }
    backend.stop(0);
  }
}
