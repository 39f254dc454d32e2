#!/bin/sh
# Installs the worker's Vault policy and its auth role. Run with a Vault token allowed to write
# policies and auth roles. Defaults match the Helm chart (namespace and service account
# "provisioner", Kubernetes auth at auth/kubernetes, role "provisioner").
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
NAMESPACE="${NAMESPACE:-provisioner}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-provisioner}"
ROLE="${ROLE:-provisioner}"

vault policy write provisioner "$HERE/provisioner.hcl"

case "${AUTH:-kubernetes}" in
kubernetes)
  # vault.auth.method=kubernetes (the chart's default): the pod's service account token logs in.
  vault write "auth/kubernetes/role/$ROLE" \
    bound_service_account_names="$SERVICE_ACCOUNT" \
    bound_service_account_namespaces="$NAMESPACE" \
    token_policies=provisioner token_ttl=1h token_max_ttl=24h
  ;;
approle)
  # vault.auth.method=approle: give the chart the role id and a Secret holding a secret id.
  vault write "auth/approle/role/$ROLE" token_policies=provisioner token_ttl=1h token_max_ttl=24h secret_id_ttl=0
  echo "role id:   $(vault read -field=role_id "auth/approle/role/$ROLE/role-id")"
  echo "secret id: vault write -f -field=secret_id auth/approle/role/$ROLE/secret-id"
  ;;
*)
  echo "AUTH must be kubernetes or approle" >&2
  exit 2
  ;;
esac
