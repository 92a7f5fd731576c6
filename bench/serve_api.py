"""``python -m bench.serve_api``: the real API, with the bench's short-timer profiles.

Only the policy source differs from ``python -m api``: tickets created here get the
rules of :func:`bench.profiles.standard_policy`, so their feedback window closes within
the run.
"""

from __future__ import annotations

from api.__main__ import main
from bench.profiles import standard_policy

if __name__ == "__main__":
    main(policies=standard_policy)
