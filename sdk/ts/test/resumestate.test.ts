// The stored form of a resume state (R36): the same text as the Go and Java SDKs, and stored
// state is input like any other, so a tampered one is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeResumeState, encodeResumeState } from "../src/resumestate.js";

// What Go's ResumeState.MarshalText and Java's ResumeState.encode write for this state.
const shared = "tcpgw-resume 1\ns1\nrt-1\n0:4 1:-1\n";

test("encodes in the Go and Java SDKs' text form and decodes it back", () => {
  const s = { sessionId: "s1", resumeToken: "rt-1", positions: [{ partition: 1, offset: -1n }, { partition: 0, offset: 4n }] };
  assert.equal(encodeResumeState(s), shared);
  assert.deepEqual(decodeResumeState(shared), { sessionId: "s1", resumeToken: "rt-1", positions: [{ partition: 0, offset: 4n }, { partition: 1, offset: -1n }] });
  assert.deepEqual(decodeResumeState("tcpgw-resume 1\ns2\n\n\n"), { sessionId: "s2", positions: [] });
  assert.equal(encodeResumeState({ sessionId: "s3", positions: [{ partition: 0, offset: 9223372036854775807n }] }), "tcpgw-resume 1\ns3\n\n0:9223372036854775807\n");
});

test("refuses malformed state", () => {
  for (const [name, text] of Object.entries({
    "other format": '{"session_id":"s1"}',
    "other version": "tcpgw-resume 2\ns1\n\n0:1\n",
    truncated: "tcpgw-resume 1\ns1\n",
    "no session": "tcpgw-resume 1\n\n\n0:1\n",
    "space in session": "tcpgw-resume 1\ns 1\n\n0:1\n",
    "no colon": "tcpgw-resume 1\ns1\n\n0\n",
    "offset not int": "tcpgw-resume 1\ns1\n\n0:x\n",
    "partition 2^31": "tcpgw-resume 1\ns1\n\n2147483648:1\n",
    "offset 2^63": "tcpgw-resume 1\ns1\n\n0:9223372036854775808\n",
    "negative partition": "tcpgw-resume 1\ns1\n\n-1:1\n",
    "offset below -1": "tcpgw-resume 1\ns1\n\n0:-2\n",
    "partition twice": "tcpgw-resume 1\ns1\n\n0:1 0:2\n",
    "double space": "tcpgw-resume 1\ns1\n\n0:1  1:2\n",
    "too large": "tcpgw-resume 1\ns1\n\n" + "0".repeat(1 << 20) + "\n",
  })) {
    assert.throws(() => decodeResumeState(text), TypeError, name);
  }
  assert.throws(() => encodeResumeState({ sessionId: "s1", resumeToken: "a\nb", positions: [] }), TypeError);
});
