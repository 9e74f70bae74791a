package server

import (
	"fmt"

	"github.com/tcpgateway/tcpgateway/gateway/session"
	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// answer accepts a PUSH_ACK (reply false) or PUSH_REPLY only from a recipient of the push: the
// session was sent it on this connection and still owes that answer, or it was sent to the
// session's identity before (SentBefore). Anything else writes no receipt and gets a non-fatal
// ERROR UNKNOWN_PUSH; a session that keeps sending them is closed.
func (c *conn) answer(seq uint64, messageID string, pos *pb.Position, reply bool, payload []byte) {
	s := c.srv
	now := s.now().UnixMilli()
	a, refusal := c.sess.TakeAnswer(messageID, reply, now)
	if refusal == session.RefusedUnknown && s.downlink != nil {
		if sent, ok := s.downlink.SentBefore(c.sess, messageID, pos, now); ok && (reply && sent.Reply || !reply && sent.Ack) {
			// Remembered with this answer given, so that a second one is refused.
			a, refusal = sent, ""
			if reply {
				sent.Reply = false
			} else {
				sent.Ack = false
			}
			c.sess.ExpectAnswer(sent, s.limits.PendingAnswers, now)
		}
	}
	if refusal != "" {
		s.m.AnswersRefused.WithLabelValues(string(refusal)).Inc()
		if c.sess.Refused() > s.limits.RefusedAnswers {
			c.fail(pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH, fmt.Sprintf("more than %d refused answers", s.limits.RefusedAnswers))
			return
		}
		c.refuse(seq, pb.ErrorCode_ERROR_CODE_UNKNOWN_PUSH, fmt.Sprintf("%s: no push %.128q awaiting this answer on this session", refusal, messageID))
		return
	}
	s.downlink.Answered(c.sess, a, reply, payload)
}

// refuse answers one frame with a non-fatal ERROR: the session goes on.
func (c *conn) refuse(seq uint64, code pb.ErrorCode, detail string) {
	c.send(&pb.Frame{Seq: seq, Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: detail}}})
}
