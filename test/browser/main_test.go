package browser

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
