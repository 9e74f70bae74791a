package downlink

import (
	"github.com/tcpgateway/tcpgateway/gateway/kafkasec"
)

// probeFailed records a failed Kafka probe: readiness says its reason, the metrics count it,
// and the log says, when the reason changes, what it means and what to check. A topic Kafka
// does not know is no failure to connect: poll records it with topicsAbsent instead.
func (c *Consumer) probeFailed(err error) {
	reason := kafkasec.Reason(err)
	c.down.Store(reason)
	c.o.Metrics.KafkaUp.Set(0)
	c.o.Metrics.KafkaErrors.WithLabelValues(reason).Inc()
	if c.probeLogged != reason {
		c.probeLogged = reason
		c.log.Warn(probeFailureMessage[reason], "reason", reason, "err", err, "fix", probeFailureFix[reason])
	}
}

// probeAnswered records a Kafka probe that got an answer; kv describe it in the log.
func (c *Consumer) probeAnswered(kv ...any) {
	c.down.Store("")
	c.o.Metrics.KafkaUp.Set(1)
	if c.probeLogged != "ok" {
		c.probeLogged = "ok"
		c.log.Info("kafka reachable", kv...)
	}
}

// probeFailureMessage and probeFailureFix are the log's words for each reason.
var (
	probeFailureMessage = map[string]string{
		kafkasec.ReasonAuthFailed:  "kafka refused the gateway's credentials or rights",
		kafkasec.ReasonTLSFailed:   "TLS to kafka failed",
		kafkasec.ReasonUnreachable: "kafka unreachable",
	}
	probeFailureFix = map[string]string{
		kafkasec.ReasonAuthFailed: "check kafka.sasl (TCPGateway spec.kafka.sasl): the mechanism must be enabled on the " +
			"brokers' listener, the username and password files must hold a user the brokers know, and the user's ACLs " +
			"must allow reading and committing the downlink topic and writing the receipts topic",
		kafkasec.ReasonTLSFailed: "check kafka.tls (TCPGateway spec.kafka.tls): caFile must hold the authority that signed " +
			"the brokers' certificates, which must be valid now and name the host dialled (or kafka.tls.serverName); " +
			"a broker requiring client certificates needs certFile and keyFile; the brokers' port must be a TLS listener",
		kafkasec.ReasonUnreachable: "check kafka.brokers (TCPGateway spec.kafka.bootstrapServers), that the brokers run " +
			"and that the network lets this pod reach them and the addresses they advertise",
	}
)
