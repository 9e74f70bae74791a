package conformance

var scenarios = []scenario{
	{name: "handshake_and_identity", rules: "R5 R6 R7 R9", run: handshakeAndIdentity},
	{name: "unauthenticated_connect_fails", rules: "R6 R9 R29", run: unauthenticatedConnectFails},
	{name: "ping", rules: "R10 R11", run: ping},
	{name: "heartbeat_keeps_session", rules: "R10", run: heartbeatKeepsSession},
	{name: "requests_out_of_order", rules: "R11 R12", run: requestsOutOfOrder},
	{name: "typed_response_errors", rules: "R13", run: typedResponseErrors},
	{name: "frame_too_large_refused", rules: "R4", run: frameTooLargeRefused},
	{name: "push_with_position", rules: "R16 R17", run: pushWithPosition},
	{name: "ack", rules: "R19", run: ack},
	{name: "reply", rules: "R19", run: reply},
	{name: "second_ack_refused_non_fatal", rules: "R19 R28", run: secondAckRefused},
	{name: "duplicate_record_delivered_once", rules: "R18", run: duplicateRecordOnce},
	{name: "replaced_stops", rules: "R8 R27 R29", run: replacedStops},
	{name: "drain_resume_complete", rules: "R15 R17 R20 R23 R24 R26", run: drainResumeComplete},
	{name: "not_recovered_surfaced", rules: "R17 R22 R23 R24 R30 R31", run: notRecoveredSurfaced},
	{name: "token_refresh", rules: "R29 R33 R34 R35", run: tokenRefresh},
	{name: "tls", rules: "R2 R9", run: tlsScenario},
	{name: "reconnect_spread_after_kill", rules: "R24 R30 R31", run: reconnectSpreadAfterKill},
	{name: "app_restart_resume", rules: "R23 R36", run: appRestartResume},
}
