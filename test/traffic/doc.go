// Package traffic drives application traffic through gateways in whole-process tests
// (test/drain, test/e2e) and checks what the applications saw: a fleet of SDK clients, each a
// distinct user and every third in a group, recording every push, connect and disconnect; a
// producer pushing numbered user, group and broadcast records at a fixed rate and remembering
// which ones Kafka accepted; talkers sending echo requests; and the checks — nothing lost,
// nothing delivered twice, order kept per user and group, how clients moved.
package traffic
