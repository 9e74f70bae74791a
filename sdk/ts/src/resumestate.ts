// The stored form of a ResumeState (R36), the same text the Go SDK (ResumeState.MarshalText)
// and the Java SDK (ResumeState.encode) write, so a state stored by one SDK reads in another.
import type { ResumeState } from "./client.js";

const MAGIC = "tcpgw-resume 1";
// Stored state may be tampered with or truncated; a topic has far fewer partitions than this.
const MAX_CHARS = 1 << 20;
const INT32_MAX = 2 ** 31 - 1;
const INT64_MAX = 2n ** 63n - 1n;

/**
 * encodeResumeState gives four lines: the version marker, the session id, the resume token (may
 * be empty) and the positions as `partition:offset` separated by spaces, in partition order.
 */
export function encodeResumeState(s: ResumeState): string {
  check(s);
  const positions = [...s.positions].sort((a, b) => a.partition - b.partition);
  return `${MAGIC}\n${s.sessionId}\n${s.resumeToken ?? ""}\n${positions.map((p) => `${p.partition}:${p.offset}`).join(" ")}\n`;
}

/** decodeResumeState parses encodeResumeState's form; it throws a TypeError on anything else. */
export function decodeResumeState(text: string): ResumeState {
  if (text.length > MAX_CHARS) {
    throw new TypeError(`tcpgateway: resume state of ${text.length} characters, more than ${MAX_CHARS}`);
  }
  const lines = text.split("\n");
  if (lines.length < 4 || lines[0] !== MAGIC) {
    throw new TypeError("tcpgateway: not an exported tcpgateway resume state");
  }
  const state: ResumeState = { sessionId: lines[1] ?? "", positions: [] };
  if (lines[2]) {
    state.resumeToken = lines[2];
  }
  const seen = new Set<number>();
  if (lines[3]) {
    for (const f of lines[3].split(" ")) {
      const m = /^(-?\d+):(-?\d+)$/.exec(f);
      const partition = m ? Number(m[1]) : NaN;
      const offset = m ? BigInt(m[2] ?? "") : 0n;
      if (!m || partition > INT32_MAX || offset > INT64_MAX) {
        throw new TypeError(`tcpgateway: resume state: bad position ${JSON.stringify(f)}`);
      }
      if (seen.has(partition)) {
        throw new TypeError(`tcpgateway: resume state: partition ${partition} named twice`);
      }
      seen.add(partition);
      state.positions.push({ partition, offset });
    }
  }
  check(state);
  return state;
}

// check refuses what no gateway sent: the handshake would be refused or resume nothing.
function check(s: ResumeState): void {
  if (s.sessionId === "") {
    throw new TypeError("tcpgateway: a resume state needs a session id");
  }
  if (/[\s]/.test(s.sessionId) || /[\r\n]/.test(s.resumeToken ?? "")) {
    throw new TypeError("tcpgateway: resume state: session id or resume token holds a line break or space");
  }
  for (const p of s.positions) {
    if (!Number.isInteger(p.partition) || p.partition < 0 || p.offset < -1n) {
      throw new TypeError(`tcpgateway: resume state: position ${p.partition}:${p.offset} (partitions from 0, offsets from -1)`);
    }
  }
}
