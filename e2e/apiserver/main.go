// Command kubeward-k8s runs the official kube-apiserver or kube-controller-manager, built from the
// k8s.io/kubernetes module, for kubeward's live-cluster test harness. It is never shipped.
//
// Usage: kubeward-k8s apiserver [kube-apiserver flags] | kubeward-k8s controller-manager [flags]
package main

import (
	"fmt"
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kubeward-k8s apiserver|controller-manager [flags]")
		os.Exit(2)
	}
	sub := os.Args[1]
	// cobra reads os.Args[1:]; drop the subcommand so the component sees only its own flags.
	os.Args = append([]string{os.Args[0]}, os.Args[2:]...)
	switch sub {
	case "apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	default:
		fmt.Fprintf(os.Stderr, "kubeward-k8s: unknown component %q\n", sub)
		os.Exit(2)
	}
}
