package app

import (
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/gateway/config"
	"github.com/tcpgateway/tcpgateway/gateway/downlink"
)

// A gateway.yaml without kafka.expiry runs the expiry group with the defaults (MaxEntries:
// the replay window's size), and each field that is set reaches the tracker.
func TestExpiryOptions(t *testing.T) {
	var c config.Config
	c.Default()
	want := downlink.ExpiryOptions{
		SessionTimeout:    downlink.DefaultExpirySessionTimeout,
		HeartbeatInterval: downlink.DefaultExpiryHeartbeatInterval,
		RebalanceTimeout:  downlink.DefaultExpiryRebalanceTimeout,
		MaxEntries:        c.Replay.MaxRecords,
	}
	if got := expiryOptions(c.Kafka.Expiry); got != want {
		t.Errorf("defaulted kafka.expiry gives %+v, want downlink's defaults %+v", got, want)
	}

	e := config.KafkaExpiry{
		SessionTimeout:    config.Duration{Duration: 45 * time.Second},
		HeartbeatInterval: config.Duration{Duration: 3 * time.Second},
		RebalanceTimeout:  config.Duration{Duration: 20 * time.Second},
		MaxEntries:        7,
	}
	want = downlink.ExpiryOptions{
		SessionTimeout: 45 * time.Second, HeartbeatInterval: 3 * time.Second, RebalanceTimeout: 20 * time.Second, MaxEntries: 7,
	}
	if got := expiryOptions(e); got != want {
		t.Errorf("expiryOptions(%+v) = %+v, want %+v", e, got, want)
	}
}
