package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

// BuildGatewayAt reads the protocol version of the tree it builds, whichever side of the move
// of gateway/protocol to sdk/go/protocol that commit is on.
func TestProtocolVersionInEitherLayout(t *testing.T) {
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ProtocolVersion(top); err != nil || got != strconv.Itoa(protocol.Version) {
		t.Errorf("ProtocolVersion(this tree) = %q, %v; want %d", got, err, protocol.Version)
	}

	old := t.TempDir()
	if err := os.MkdirAll(filepath.Join(old, "gateway", "protocol"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "gateway", "protocol", "codec.go"), []byte("package protocol\n\nconst Version = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ProtocolVersion(old); err != nil || got != "7" {
		t.Errorf("ProtocolVersion(tree before the move) = %q, %v; want 7", got, err)
	}

	if got, err := ProtocolVersion(t.TempDir()); err == nil {
		t.Errorf("ProtocolVersion(tree without a codec) = %q, want an error", got)
	}
}
