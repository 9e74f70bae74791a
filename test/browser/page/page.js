// The browser test page (test/browser): one client of the TypeScript SDK over WebSocket, with
// what it sees kept in window.tcpgwState for the test to read through the DevTools protocol.
// Reconnects, GOAWAY and resume are the SDK's: the page only records and acks.
import { GoAwayError, GoAway_Reason, ResumeResult_Status, connect } from "@tcpgateway/client";

const state = {
  phase: "loading", // loading, connecting, connected, failed (see errors), stopped
  connects: [], // every handshake: {at, serverId, sessionId, userId, resume}
  disconnects: [], // every connection lost: {at, error, goAway}
  pushes: [], // every push delivered, in order: {at, id, partition, offset, payload, ackRequired, acked, ackError}
  refused: [], // non-fatal ERROR frames: {at, code, reason}
  stopped: "", // why the client stopped for good
  errors: [], // what failed in the page itself
};
window.tcpgwState = state;

const text = new TextDecoder();
const log = (line) => {
  document.getElementById("log").textContent += `${new Date().toISOString()} ${line}\n`;
};

function onPush(p) {
  const pos = p.position;
  const rec = {
    at: Date.now(),
    id: p.messageId,
    partition: pos ? pos.partition : -1,
    offset: pos ? String(pos.offset) : "",
    payload: text.decode(p.payload),
    ackRequired: p.push.ackRequired,
    acked: false,
    ackError: "",
  };
  state.pushes.push(rec);
  if (!p.push.ackRequired) return;
  p.ack().then(
    () => {
      rec.acked = true;
    },
    (e) => {
      rec.ackError = String(e);
    },
  );
}

async function main() {
  const res = await fetch("config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  const cfg = await res.json();
  state.phase = "connecting";
  const reconnect = {};
  if (cfg.reconnectInitialMs) reconnect.initialMs = cfg.reconnectInitialMs;
  if (cfg.reconnectMaxMs) reconnect.maxMs = cfg.reconnectMaxMs;
  await connect({
    address: cfg.url,
    token: cfg.token,
    clientVersion: cfg.clientVersion || "tcpgw-browser-test",
    reconnect,
    on: {
      connected(ack) {
        state.phase = "connected";
        state.connects.push({
          at: Date.now(),
          serverId: ack.serverId,
          sessionId: ack.sessionId,
          userId: ack.userId,
          resume: ack.resume ? ResumeResult_Status[ack.resume.status] : "",
        });
        log(`connected to ${ack.serverId}`);
      },
      disconnected(cause) {
        state.disconnects.push({
          at: Date.now(),
          error: String(cause),
          goAway: cause instanceof GoAwayError ? GoAway_Reason[cause.goaway.reason] : "",
        });
        log(`disconnected: ${cause}`);
      },
      stopped(reason) {
        state.phase = "stopped";
        state.stopped = String(reason);
        log(`stopped: ${reason}`);
      },
      push: onPush,
      refused(e) {
        state.refused.push({ at: Date.now(), code: e.code, reason: e.reason });
      },
    },
  });
}

main().catch((e) => {
  state.phase = "failed";
  state.errors.push(String(e));
  log(`failed: ${e}`);
});
