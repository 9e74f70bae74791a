// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 at the version pinned
// in this module's go.mod. It lives in a module of its own because etcd's dependency graph does
// not compile together with k8s.io/kubernetes.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
