// Package helmtest owns the tests of the provisioner Helm chart and the container image recipe:
// it renders the chart with the helm binary and decodes every manifest strictly into the
// Kubernetes, prometheus-operator and KEDA API types, so an unknown or misspelt field fails.
//
// It is its own Go module so that the service's go.mod stays free of Kubernetes dependencies.
package helmtest
