"""The HTTP surface, one module per resource; each route only parses, calls, shapes.

Bearer auth is checked once per request by the traffic middleware (before rate limits and
faults, as a hosted API does), not here.
"""

import json
from typing import Any

from fastapi.responses import Response


def json_response(body: Any) -> Response:
    """Serialised once with the standard library (the hot endpoints skip FastAPI's
    response-model machinery, which costs more than the model on the fake backend)."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    media_type="application/json")
