# Vault policy of the provisioner worker.
#
# Written for the defaults: KV v2 mounted at "secret" (--vault-mount), the secret path policy
# customers/{workspace_name}/ (--secret-path-policy) and the Airbyte client secret at
# vault:provisioner/airbyte#client_secret (--airbyte-client-secret-ref). Change the paths with them.
# The worker only reads; it never writes, lists or deletes secrets. setup.sh installs this policy and
# binds it to the worker's Kubernetes or AppRole auth role.

# End users' credentials, one folder per workspace: the request's reference must also pass the
# worker's own path policy, so a request for workspace A can never read B's folder.
path "secret/data/customers/+/*" {
  capabilities = ["read"]
}

# The Airbyte application's client secret (only with --airbyte-client-secret-ref).
path "secret/data/provisioner/airbyte" {
  capabilities = ["read"]
}

# Keep its own token alive (the worker renews it at two thirds of each lease and logs in again when
# it expires or is revoked).
path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
