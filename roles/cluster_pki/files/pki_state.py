"""What the cluster_pki role must issue, from one pass over the PKI folder (instead of a module run per certificate).

Usage: pki_state.py <pki folder> <renew days> '<{"cas": {name: digest}, "leaves": {name: digest}}>'
Prints JSON: "certificates" (every *.crt under the folder: not_after, renew), "issue_cas" (missing, or their
specification changed), "issue_leaves" (missing, specification changed, or expiring within <renew days>).
A CA is never renewed for its age here: a new CA means every node trusts anew, a planned change.
The digests of the specifications the certificates were issued from are kept in <folder>/slipway-pki.json.
Needs python3-cryptography (the role installs it).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

MANIFEST = "slipway-pki.json"


def to_issue(specs: dict[str, str], certificates: dict[str, dict], issued: dict[str, str],
             renew: bool) -> list[str]:
    """Names (paths without .crt) whose certificate is missing, was issued from another spec, or (renew) is due."""
    names = []
    for name, digest in specs.items():
        current = certificates.get(f"{name}.crt")
        if current is None or issued.get(name) != digest or (renew and current["renew"]):
            names.append(name)
    return names


def certificates_in(folder: Path, renew_days: int) -> dict[str, dict]:
    from cryptography import x509  # imported here: the pure functions above are tested without it

    horizon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=renew_days)
    found = {}
    for path in sorted(folder.rglob("*.crt")):
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        # not_valid_after_utc is cryptography 42+; Debian bookworm has 38, whose not_valid_after is naive UTC.
        not_after = getattr(certificate, "not_valid_after_utc", None) or certificate.not_valid_after.replace(
            tzinfo=datetime.UTC)
        found[str(path.relative_to(folder))] = {"not_after": not_after.isoformat(), "renew": not_after <= horizon}
    return found


def main(folder: Path, renew_days: int, specs: dict) -> dict:
    certificates = certificates_in(folder, renew_days) if folder.is_dir() else {}
    manifest = folder / MANIFEST
    issued = json.loads(manifest.read_text()) if manifest.exists() else {}
    return {"certificates": certificates,
            "issue_cas": to_issue(specs["cas"], certificates, issued, renew=False),
            "issue_leaves": to_issue(specs["leaves"], certificates, issued, renew=True)}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]))))
