"""Loaded by the schemathesis CLI (``SCHEMATHESIS_HOOKS``): ``POST /inbound/mime`` takes
the raw message (``message/rfc822``), which schemathesis sends as it sends any bytes."""

import schemathesis

schemathesis.serializer.alias("message/rfc822", "application/octet-stream")
