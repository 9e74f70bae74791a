package io.tcpgateway.push;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import tcpgateway.v1.DownlinkOuterClass.SessionEvent;

/**
 * Folds session events (a TCPGateway's events topic) into who is online where: user → sessions →
 * gateway pod. The same rules as the Go push SDK's {@code push.Presence}, checked by both SDKs'
 * tests against the shared vectors {@code gateway/push/testdata/presence.txt}.
 *
 * <p>Feed it every partition of the topic, from a point before the sessions you care about
 * connected (the start of retention for a full view): {@link PresenceFeed} does. A DISCONNECTED
 * or REPLACED ends only the connection it names, so events of two pods arriving in either order
 * (a drained session resumed elsewhere) leave the right one online; an event from a newer process
 * (epoch) of a pod ends what the pod's earlier process held (it was killed without a word).
 * Records that are not well-formed events are skipped and counted ({@link #stats()}), never
 * trusted. Thread-safe.
 */
public final class Presence {
  /** Stats key: the record is not a SessionEvent. */
  public static final String SKIP_UNDECODABLE = "undecodable";
  /** Stats key: a kind it does not know, or an id missing or too long. */
  public static final String SKIP_INVALID = "invalid_event";

  /**
   * The ids a view keeps are at most this many UTF-8 bytes: the gateway never writes longer ones
   * (it refuses handshakes with longer ids), so a longer one is not a gateway's.
   */
  static final int MAX_ID_BYTES = 256;

  /** What folding one record did. */
  public enum Result {
    /** Folded (an event of a process the pod has since replaced is folded into nothing). */
    APPLIED(null),
    /** Skipped: the record is not a SessionEvent. */
    UNDECODABLE(SKIP_UNDECODABLE),
    /** Skipped: an unknown kind, or an id missing or longer than 256 bytes. */
    INVALID_EVENT(SKIP_INVALID);

    private final String reason;

    Result(String reason) {
      this.reason = reason;
    }

    /** The {@link Stats#skipped()} key of a skipped record; null for APPLIED. */
    public String reason() {
      return reason;
    }
  }

  // All guarded by this.
  private final Map<String, Map<String, Online>> users = new HashMap<>(); // user → session → where
  private final Map<String, Long> epochs = new HashMap<>(); // server id → newest epoch seen
  private final Map<ProcessKey, long[]> procs = new HashMap<>(); // (server, epoch) → {max seq, seen}
  private long applied;
  private final Map<String, Long> skipped = new HashMap<>();

  /** Decodes a record's value and folds it (see {@link #apply}). */
  public Result applyRecord(byte[] value) {
    SessionEvent ev;
    try {
      ev = SessionEvent.parseFrom(value == null ? new byte[0] : value);
    } catch (InvalidProtocolBufferException e) {
      return skip(Result.UNDECODABLE);
    }
    return apply(ev);
  }

  /** Folds one event. */
  public synchronized Result apply(SessionEvent ev) {
    if (!valid(ev)) {
      return skip(Result.INVALID_EVENT);
    }
    applied++;
    count(ev);
    String server = ev.getServerId();
    long newest = epochs.getOrDefault(server, 0L);
    if (ev.getEpoch() < newest) {
      return Result.APPLIED; // from a process the pod has since replaced: what it held is gone
    }
    if (ev.getEpoch() > newest) {
      epochs.put(server, ev.getEpoch());
      forgetOlder(server, ev.getEpoch());
    }
    Map<String, Online> sessions = users.get(ev.getUserId());
    switch (ev.getKind()) {
      case KIND_CONNECTED:
      case KIND_RESUMED:
        if (sessions == null) {
          sessions = new HashMap<>();
          users.put(ev.getUserId(), sessions);
        }
        sessions.put(ev.getSessionId(), new Online(ev));
        break;
      default: // KIND_REPLACED, KIND_DISCONNECTED (valid() admits no other)
        Online o = sessions == null ? null : sessions.get(ev.getSessionId());
        if (o != null && o.connectionId.equals(ev.getConnectionId())) {
          sessions.remove(ev.getSessionId());
          if (sessions.isEmpty()) {
            users.remove(ev.getUserId());
          }
        }
    }
    return Result.APPLIED;
  }

  private synchronized Result skip(Result r) {
    skipped.merge(r.reason(), 1L, Long::sum);
    return r;
  }

  static boolean valid(SessionEvent ev) {
    switch (ev.getKindValue()) {
      case SessionEvent.Kind.KIND_CONNECTED_VALUE:
      case SessionEvent.Kind.KIND_DISCONNECTED_VALUE:
      case SessionEvent.Kind.KIND_REPLACED_VALUE:
      case SessionEvent.Kind.KIND_RESUMED_VALUE:
        break;
      default:
        return false;
    }
    for (ByteString id : new ByteString[] {ev.getUserIdBytes(), ev.getSessionIdBytes(), ev.getServerIdBytes(), ev.getConnectionIdBytes()}) {
      if (id.isEmpty() || id.size() > MAX_ID_BYTES) {
        return false;
      }
    }
    return ev.getDeviceIdBytes().size() <= MAX_ID_BYTES && ev.getClientVersionBytes().size() <= MAX_ID_BYTES
        && ev.getRemoteAddressBytes().size() <= MAX_ID_BYTES;
  }

  /** Keeps each process's highest seq (unsigned, as on the wire) and number of events seen. */
  private void count(SessionEvent ev) {
    long[] ps = procs.computeIfAbsent(new ProcessKey(ev.getServerId(), ev.getEpoch()), k -> new long[2]);
    if (Long.compareUnsigned(ev.getSeq(), ps[0]) > 0) {
      ps[0] = ev.getSeq();
    }
    ps[1]++;
  }

  /** Ends the sessions the server's earlier processes held. */
  private void forgetOlder(String server, long epoch) {
    for (Iterator<Map<String, Online>> u = users.values().iterator(); u.hasNext(); ) {
      Map<String, Online> sessions = u.next();
      sessions.values().removeIf(o -> o.serverId.equals(server) && o.epoch < epoch);
      if (sessions.isEmpty()) {
        u.remove();
      }
    }
  }

  /** The user's online sessions, sorted by session id. */
  public synchronized List<Online> user(String userId) {
    Map<String, Online> sessions = users.get(userId);
    if (sessions == null) {
      return Collections.emptyList();
    }
    List<Online> out = new ArrayList<>(sessions.values());
    out.sort(Comparator.comparing(Online::sessionId));
    return Collections.unmodifiableList(out);
  }

  /** The number of users with at least one session online. */
  public synchronized int users() {
    return users.size();
  }

  /** What the view folded and skipped so far. */
  public synchronized Stats stats() {
    long missing = 0;
    for (long[] ps : procs.values()) {
      if (Long.compareUnsigned(ps[0], ps[1]) > 0) {
        missing += ps[0] - ps[1];
      }
    }
    return new Stats(applied, new HashMap<>(skipped), missing);
  }

  /** One session of a user and the gateway pod holding it. */
  public static final class Online {
    private final String sessionId;
    private final String serverId;
    private final String connectionId;
    private final String deviceId;
    private final String clientVersion;
    private final String remoteAddress;
    private final long sinceMs;
    private final long epoch;

    Online(SessionEvent ev) {
      sessionId = ev.getSessionId();
      serverId = ev.getServerId();
      connectionId = ev.getConnectionId();
      deviceId = ev.getDeviceId();
      clientVersion = ev.getClientVersion();
      remoteAddress = ev.getRemoteAddress();
      sinceMs = ev.getAtMs();
      epoch = ev.getEpoch();
    }

    public String sessionId() {
      return sessionId;
    }

    /** The gateway pod holding the session (its StatefulSet pod name). */
    public String serverId() {
      return serverId;
    }

    public String connectionId() {
      return connectionId;
    }

    public String deviceId() {
      return deviceId;
    }

    public String clientVersion() {
      return clientVersion;
    }

    /** Empty when the gateway runs with kafka.eventsOmitRemoteAddress. */
    public String remoteAddress() {
      return remoteAddress;
    }

    /** at_ms of the CONNECTED or RESUMED that put it here (Unix ms, the pod's clock). */
    public long sinceMs() {
      return sinceMs;
    }

    @Override
    public boolean equals(Object o) {
      if (!(o instanceof Online)) {
        return false;
      }
      Online x = (Online) o;
      return sessionId.equals(x.sessionId) && serverId.equals(x.serverId) && connectionId.equals(x.connectionId)
          && deviceId.equals(x.deviceId) && clientVersion.equals(x.clientVersion) && remoteAddress.equals(x.remoteAddress)
          && sinceMs == x.sinceMs && epoch == x.epoch;
    }

    @Override
    public int hashCode() {
      return Objects.hash(sessionId, serverId, connectionId, sinceMs, epoch);
    }

    @Override
    public String toString() {
      return sessionId + "@" + serverId + "(" + connectionId + ")";
    }
  }

  /** What a view folded. */
  public static final class Stats {
    private final long applied;
    private final Map<String, Long> skipped;
    private final long missing;

    Stats(long applied, Map<String, Long> skipped, long missing) {
      this.applied = applied;
      this.skipped = Collections.unmodifiableMap(skipped);
      this.missing = missing;
    }

    /** Events folded. */
    public long applied() {
      return applied;
    }

    /** Records skipped, by reason ({@link #SKIP_UNDECODABLE}, {@link #SKIP_INVALID}). */
    public Map<String, Long> skipped() {
      return skipped;
    }

    /** Records skipped for this reason. */
    public long skipped(String reason) {
      return skipped.getOrDefault(reason, 0L);
    }

    /**
     * Events each gateway process numbered but this view has not seen (the sum over processes of
     * the highest seq minus the events seen). Once the view has read every partition up to its
     * end, a positive count means the gateways dropped events (Kafka slow or down): sessions of
     * those processes may be shown online or offline wrongly.
     */
    public long missing() {
      return missing;
    }

    @Override
    public String toString() {
      return "applied " + applied + ", skipped " + skipped + ", missing " + missing;
    }
  }

  private static final class ProcessKey {
    final String serverId;
    final long epoch;

    ProcessKey(String serverId, long epoch) {
      this.serverId = serverId;
      this.epoch = epoch;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof ProcessKey && ((ProcessKey) o).serverId.equals(serverId) && ((ProcessKey) o).epoch == epoch;
    }

    @Override
    public int hashCode() {
      return serverId.hashCode() * 31 + Long.hashCode(epoch);
    }
  }
}
