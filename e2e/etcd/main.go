// Command kubeward-etcd runs the official etcd server (go.etcd.io/etcd/server/v3 etcdmain) for kubeward's
// live-cluster test harness: Debian's etcd 3.4 is older than recent kube-apiservers support.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
