package config

import "time"

// TerminationGraceMargin is added to Drain.HardDeadline to get the pod's
// terminationGracePeriodSeconds. After the hard deadline the process still has to close its
// sockets, commit Kafka offsets and exit, and the kubelet's SIGKILL timer is not precise; the
// margin keeps a drain that hits its deadline from ending in SIGKILL (and a non-zero exit).
const TerminationGraceMargin = 10 * time.Second

// TerminationGracePeriod is how long Kubernetes must wait after preStop starts before killing
// the gateway: HardDeadline plus TerminationGraceMargin. The operator rounds it up to whole
// seconds for terminationGracePeriodSeconds.
func (d Drain) TerminationGracePeriod() time.Duration {
	return d.HardDeadline.Duration + TerminationGraceMargin
}
