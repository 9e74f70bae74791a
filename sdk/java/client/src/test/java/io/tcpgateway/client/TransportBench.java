package io.tcpgateway.client;

import com.google.protobuf.ByteString;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import tcpgateway.v1.Protocol.Frame;
import tcpgateway.v1.Protocol.Push;

/**
 * CPU of the client's own thread per frame read (a delivery) and per frame written, TCP transport
 * against WebSocket transport, over loopback sockets in this JVM, rounds alternating. A
 * benchmark, not a test: it asserts nothing and runs only with -Dtcpgw.bench=1
 * (docs/benchmarks.md has the command and figures).
 */
@EnabledIfSystemProperty(named = "tcpgw.bench", matches = "1")
class TransportBench {
  static final int FRAMES = 200_000;
  static final int ROUNDS = 7;
  static final ThreadMXBean CPU = ManagementFactory.getThreadMXBean();

  static Frame push() {
    return Frame.newBuilder().setPush(Push.newBuilder().setMessageId("m-123456").setPayload(ByteString.copyFrom(new byte[256]))).build();
  }

  /** The bytes a gateway sends for FRAMES pushes: a byte stream, or one binary message each. */
  static byte[] wire(boolean ws) throws Exception {
    byte[] f = Frames.encode(push(), 1 << 20);
    byte[] one = ws ? FakeWebSocketGateway.serverFrame(0x82, f) : f;
    ByteArrayOutputStream b = new ByteArrayOutputStream(one.length * FRAMES);
    for (int i = 0; i < FRAMES; i++) {
      b.write(one);
    }
    return b.toByteArray();
  }

  static FrameTransport transport(boolean ws, Socket s) throws Exception {
    DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 16 * 1024));
    OutputStream out = new BufferedOutputStream(s.getOutputStream(), 16 * 1024);
    return ws ? new WebSocketTransport(s, in, out, new SecureRandom()) : new TcpTransport(s, in, out);
  }

  /** CPU nanoseconds of this thread per frame read, the peer writing {@code wire}. */
  static double readNs(boolean ws, byte[] wire) throws Exception {
    try (ServerSocket srv = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
         Socket c = new Socket(InetAddress.getLoopbackAddress(), srv.getLocalPort());
         Socket p = srv.accept()) {
      Thread w = new Thread(() -> {
        try {
          p.getOutputStream().write(wire);
        } catch (Exception ignored) {
          // the reader failed: its exception reports it
        }
      });
      w.start();
      FrameTransport t = transport(ws, c);
      long t0 = CPU.getCurrentThreadCpuTime();
      for (int i = 0; i < FRAMES; i++) {
        t.read(1 << 20);
      }
      long ns = CPU.getCurrentThreadCpuTime() - t0;
      w.join();
      return (double) ns / FRAMES;
    }
  }

  /** CPU nanoseconds of this thread per frame written, the peer draining. */
  static double writeNs(boolean ws) throws Exception {
    byte[] f = Frames.encode(push(), 1 << 20);
    try (ServerSocket srv = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
         Socket c = new Socket(InetAddress.getLoopbackAddress(), srv.getLocalPort());
         Socket p = srv.accept()) {
      Thread d = new Thread(() -> {
        byte[] buf = new byte[64 * 1024];
        try (InputStream in = p.getInputStream()) {
          while (in.read(buf) >= 0) {
            // drain
          }
        } catch (Exception ignored) {
          // closed
        }
      });
      d.start();
      FrameTransport t = transport(ws, c);
      long t0 = CPU.getCurrentThreadCpuTime();
      for (int i = 0; i < FRAMES; i++) {
        t.write(f);
      }
      long ns = CPU.getCurrentThreadCpuTime() - t0;
      c.shutdownOutput();
      d.join();
      return (double) ns / FRAMES;
    }
  }

  static double median(List<Double> v) {
    List<Double> s = new ArrayList<>(v);
    Collections.sort(s);
    return s.get(s.size() / 2);
  }

  @Test
  void cpuPerFrame() throws Exception {
    byte[] tcpWire = wire(false);
    byte[] wsWire = wire(true);
    readNs(false, tcpWire); // warm-up
    readNs(true, wsWire);
    writeNs(false);
    writeNs(true);
    List<Double> rt = new ArrayList<>();
    List<Double> rw = new ArrayList<>();
    List<Double> wt = new ArrayList<>();
    List<Double> ww = new ArrayList<>();
    for (int r = 0; r < ROUNDS; r++) {
      rt.add(readNs(false, tcpWire));
      rw.add(readNs(true, wsWire));
      wt.add(writeNs(false));
      ww.add(writeNs(true));
    }
    System.out.printf("BENCH transport read (delivery, 256-byte push): tcp %.0f ns/frame, websocket %.0f ns/frame, ratio %.2f%n",
        median(rt), median(rw), median(rw) / median(rt));
    System.out.printf("BENCH transport write (256-byte frame): tcp %.0f ns/frame, websocket %.0f ns/frame, ratio %.2f%n",
        median(wt), median(ww), median(ww) / median(wt));
    System.out.println("BENCH rounds read tcp " + rt + " ws " + rw + " write tcp " + wt + " ws " + ww);
  }
}
