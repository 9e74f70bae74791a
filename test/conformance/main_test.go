package conformance

import (
	"fmt"
	"os"
	"testing"

	"github.com/tcpgateway/tcpgateway/test/gwproc"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

func TestMain(m *testing.M) {
	if transportErr != nil {
		fmt.Fprintln(os.Stderr, transportErr)
		os.Exit(2)
	}
	code := kafkatest.Main(m)
	gwproc.Cleanup()
	cleanupBuild()
	os.Exit(code)
}
