package server

import (
	"syscall"
	"unsafe"
)

// writeNowFrames is the most frames one WriteNow hands to the kernel: its iovec array lives on
// the caller's stack (1 KiB). Frames beyond it are left to the session's flusher, as what a
// full socket does not take is. A delivery batch queues at most 64 records per session
// (downlink's batchMaxRecords), so a batch's frames fit unless Sends added more meanwhile.
const writeNowFrames = 64

// writeNow is one writev of bufs' first writeNowFrames frames on the non-blocking socket fd.
// It returns the bytes written; a full socket (EAGAIN) or an interrupted call is 0 bytes and
// no error, which leaves the rest to the flusher. RawSyscall, as netpoll's own sendmsg: the
// call never blocks, so the scheduler need not hand the P to another thread meanwhile.
func writeNow(fd int, bufs [][]byte) (int, error) {
	var iov [writeNowFrames]syscall.Iovec
	n := 0
	for _, b := range bufs {
		if n == len(iov) {
			break
		}
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	switch e {
	case 0:
		return int(r), nil
	case syscall.EAGAIN, syscall.EINTR:
		return 0, nil
	default:
		return 0, e
	}
}
