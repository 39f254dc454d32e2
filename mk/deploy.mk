# Deployment targets: the Helm chart and the container image. Included by the main Makefile,
# which defines GO, GOBIN, VERSION, COMMIT and LDFLAGS (the image uses the same LDFLAGS as `make build`).

HELM_VERSION ?= v3.22.0
HELM         ?= $(GOBIN)/helm
CHART_DIR    := deploy/helm/provisioner
HELM_TEST_DIR := deploy/helm/test
# A go-installed helm reports Kubernetes v1.20, below the chart's kubeVersion; lint as a current cluster.
HELM_KUBE_VERSION ?= 1.33.0

IMAGE        ?= ghcr.io/provisioner-dev/provisioner
IMAGE_TAG    ?= $(VERSION)
DOCKER       ?= docker

.PHONY: helm-lint helm-test image

$(HELM):
	GOBIN=$(GOBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# The defaults alone refuse to render (no Airbyte client id, no secret backend): lint with every
# ci/*-values.yaml, the least of which is minimal-values.yaml.
helm-lint: $(HELM) ## helm lint --strict the chart with the minimal, all-on and KEDA values
	@for f in $(CHART_DIR)/ci/*-values.yaml; do \
		echo "$(HELM) lint --strict $(CHART_DIR) -f $$f"; \
		$(HELM) lint --strict $(CHART_DIR) --kube-version $(HELM_KUBE_VERSION) -f $$f || exit 1; \
	done

helm-test: helm-lint ## lint, render and strictly validate the chart (and check the Dockerfile)
	cd $(HELM_TEST_DIR) && HELM=$(HELM) $(GO) test -count=1 ./...

image: ## build the container image $(IMAGE):$(IMAGE_TAG)
	$(DOCKER) build \
		--build-arg VERSION=$(VERSION) \
		--build-arg COMMIT=$(COMMIT) \
		--build-arg LDFLAGS="$(LDFLAGS)" \
		-t $(IMAGE):$(IMAGE_TAG) .
