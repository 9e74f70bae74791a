package cluster

import (
	"fmt"
	"net/netip"
	"sync"
)

// IPAllocator hands out loopback addresses for pods: 127.0.10.1 up to 127.0.19.254
// (every address of those /24s except .0 and .255). An address is never handed out while in
// use, and freed addresses are reused only after the cursor has gone round the whole range,
// so a recreated pod gets a fresh address and stale connections or LB entries for the old
// one cannot reach it. All of 127.0.0.0/8 is routed to lo on Linux, so no setup is needed.
type IPAllocator struct {
	mu     sync.Mutex
	inUse  map[netip.Addr]bool
	cursor int
}

const (
	podIPFirstOctet = 10 // third octet of the first pod /24
	podIPSubnets    = 10 // 127.0.10.0/24 .. 127.0.19.0/24
	podIPsPerSubnet = 254
)

// NewIPAllocator returns an empty allocator.
func NewIPAllocator() *IPAllocator { return &IPAllocator{inUse: map[netip.Addr]bool{}} }

// Allocate returns a free address.
func (a *IPAllocator) Allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	total := podIPSubnets * podIPsPerSubnet
	for range total {
		i := a.cursor
		a.cursor = (a.cursor + 1) % total
		ip := netip.AddrFrom4([4]byte{127, 0, byte(podIPFirstOctet + i/podIPsPerSubnet), byte(1 + i%podIPsPerSubnet)})
		if !a.inUse[ip] {
			a.inUse[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("all %d pod addresses are in use", total)
}

// Release makes ip available again.
func (a *IPAllocator) Release(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.inUse, ip)
}
