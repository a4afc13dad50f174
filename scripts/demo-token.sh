#!/usr/bin/env bash
# Prints a JWT for the local demo (deploy/demo/sluice.yaml: HS256, kid "demo", audience sluice-demo),
# valid for one hour (or the hours given). For the demo only: the secret is public.
#   scripts/demo-token.sh alice [hours]
set -euo pipefail
python3 - "${1:?usage: $0 <user id> [hours]}" "${SLUICE_DEMO_JWT_SECRET:-demo-secret-not-for-production}" "${2:-1}" <<'PY'
import base64, hashlib, hmac, json, sys, time
user, secret, hours = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
now = int(time.time())
header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "demo"}).encode())
payload = b64(json.dumps({"sub": user, "aud": "sluice-demo", "iat": now, "exp": now + int(hours * 3600)}).encode())
signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
print(f"{header}.{payload}.{signature}")
PY
