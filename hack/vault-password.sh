#!/bin/sh
# Ansible Vault password client for CI servers: prints $SLIPWAY_VAULT_PASSWORD (a secret the server's credential
# store injects), so that the password is never written to a file. Use: --vault-password-file hack/vault-password.sh
if [ -z "${SLIPWAY_VAULT_PASSWORD:-}" ]; then
    echo "vault-password.sh: SLIPWAY_VAULT_PASSWORD is not set (bind the CI server's vault credential to it)" >&2
    exit 1
fi
printf '%s\n' "$SLIPWAY_VAULT_PASSWORD"
