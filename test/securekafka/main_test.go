// Package securekafka runs the gateway, the push SDK and tcpgwctl against the real secured
// test broker (hack/kafka.sh in sasl_ssl mode, test/kafkatest.StartSecure): the downlink path
// over SASL_SSL, and each way TLS and SASL to Kafka can fail, each with its own reason.
package securekafka

import (
	"os"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) {
	code := kafkatest.Main(m)
	gwproc.Cleanup()
	os.Exit(code)
}
