#!/usr/bin/env bash
# Prints a JWT for the local demo (deploy/demo/sluice.yaml: HS256, kid "demo", audience sluice-demo),
# valid for one hour. For the demo only: the secret is public.
#   scripts/demo-token.sh alice
set -euo pipefail
python3 - "${1:?usage: $0 <user id>}" "${SLUICE_DEMO_JWT_SECRET:-demo-secret-not-for-production}" <<'PY'
import base64, hashlib, hmac, json, sys, time
user, secret = sys.argv[1], sys.argv[2].encode()
b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
now = int(time.time())
header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "demo"}).encode())
payload = b64(json.dumps({"sub": user, "aud": "sluice-demo", "iat": now, "exp": now + 3600}).encode())
signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
print(f"{header}.{payload}.{signature}")
PY
