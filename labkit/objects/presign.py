"""Presigned upload URLs that fix the upload's size: SigV4 with a signed Content-Length.

The minio SDK signs only `host` in a presigned URL, so a URL meant for a small
image accepts any number of bytes. Signing `content-length` as well (AWS
Signature Version 4, query-string authentication) makes the store itself refuse
an upload of any other size: it recomputes the signature from the request's own
Content-Length header, and its HTTP server reads no more bytes than that header
says. Both the embedded store (nanio verifies every header named in
X-Amz-SignedHeaders) and MinIO (which takes `content-length` from the request
when it is a signed header) honour it; neither needs POST policies, which the
embedded store does not implement.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from labkit.objects.endpoint import S3Endpoint

ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = "UNSIGNED-PAYLOAD"


def presign_sized_put(
    endpoint: S3Endpoint,
    bucket: str,
    key: str,
    size: int,
    expires: timedelta,
    signed_at: datetime | None = None,
) -> str:
    """A URL that accepts one HTTP PUT of exactly `size` bytes to `key` until it expires."""
    when = (signed_at or datetime.now(UTC)).astimezone(UTC)
    stamp, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    scope = f"{day}/{endpoint.region}/s3/aws4_request"
    path = "/" + quote(f"{bucket}/{key}", safe="/-_.~")
    query = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{endpoint.keys.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(max(1, int(expires.total_seconds()))),
        "X-Amz-SignedHeaders": "content-length;host",
    }
    canonical_query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(query.items())
    )
    canonical_request = "\n".join(
        [
            "PUT",
            path,
            canonical_query,
            f"content-length:{size}\nhost:{endpoint.endpoint}\n",
            "content-length;host",
            _UNSIGNED,
        ]
    )
    to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signing_key = _hmac(("AWS4" + endpoint.keys.secret_key).encode(), day)
    for part in (endpoint.region, "s3", "aws4_request"):
        signing_key = _hmac(signing_key, part)
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{endpoint.url}{path}?{canonical_query}&X-Amz-Signature={signature}"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
