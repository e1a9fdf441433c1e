#!/usr/bin/env bash
# The authenticator's current code for a demo officer's TOTP secret (what a
# phone's authenticator app shows; RFC 6238: SHA-1, 6 digits, 30 s), for
# logging in at the demo console without one. Demo only.
#   scripts/totp.sh SECRET
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/totp.sh SECRET" >&2; exit 2; }
exec python3 - "$1" <<'PY'
import base64, hashlib, hmac, struct, sys, time
secret = sys.argv[1].strip().upper()
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
offset = digest[-1] & 0x0F
code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
print(f"{code:06d}")
PY
