module kubeward.dev/e2e/yamljson

go 1.22

// The versions Kubernetes v1.37 builds with (e2e/apiserver/go.sum): sigs.k8s.io/yaml v1.6.0 over
// go.yaml.in/yaml/v2 v2.4.4.
require (
	go.yaml.in/yaml/v2 v2.4.4
	sigs.k8s.io/yaml v1.6.0
)
